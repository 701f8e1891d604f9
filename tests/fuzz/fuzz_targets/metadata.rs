//! A metadata file as storage returns it (possibly corrupt or hostile):
//! parsing never panics, and whatever parses writes back to bytes that
//! parse to the same metadata.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rstuf_worker::tuf::metadata::{Root, Signed, Snapshot, Targets, Timestamp};
use rstuf_worker::tuf::Metadata;

fn round_trip<T: Signed + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(metadata) = Metadata::<T>::from_file_bytes(data) else {
        return;
    };
    let bytes = metadata
        .to_file_bytes()
        .expect("parsed metadata serializes");
    let again = Metadata::<T>::from_file_bytes(&bytes).expect("written metadata parses");
    assert_eq!(again, metadata);
    let _ = metadata.signed_bytes();
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Root>(data);
    round_trip::<Targets>(data);
    round_trip::<Snapshot>(data);
    round_trip::<Timestamp>(data);
});
