//! AWSS3 storage against a local moto S3 server, one server per test (on
//! 127.0.0.1, a free port, killed when the test ends).
mod common;

use common::moto::Moto;
use rstuf_worker::storage::{AwsS3, Error, MetadataFile, Storage};
use rstuf_worker::tuf::{RoleName, Version};

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

fn file(name: &str, version: u64) -> MetadataFile {
    MetadataFile::Versioned {
        role: role(name),
        version: Version(version),
    }
}

#[test]
fn put_get_and_latest_round_trip() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-roundtrip");
    let storage = AwsS3::connect(&moto.config("rstuf-roundtrip")).unwrap();

    let batch: Vec<(MetadataFile, &[u8])> = vec![
        (file("root", 1), b"root one"),
        (file("2024-x", 1), b"digit leading"),
        (MetadataFile::Timestamp, b"ts one"),
    ];
    storage.put_all(&batch).unwrap();
    storage.put(&MetadataFile::Timestamp, b"ts two").unwrap();

    assert_eq!(storage.get(&role("root"), Version(1)).unwrap(), b"root one");
    assert_eq!(
        storage.get_latest(&role("2024-x")).unwrap(),
        Some((Version(1), b"digit leading".to_vec()))
    );
    assert_eq!(storage.get_timestamp().unwrap(), b"ts two");
    assert_eq!(storage.get_latest(&role("targets")).unwrap(), None);

    let err = storage.get(&role("root"), Version(2)).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "s3://rstuf-roundtrip/2.root.json does not exist"
    );
}

#[test]
fn latest_probes_objects_written_behind_the_cache() {
    let moto = Moto::start();
    let raw = moto.create_bucket("rstuf-behind");
    let storage = AwsS3::connect(&moto.config("rstuf-behind")).unwrap();
    storage.put(&file("snapshot", 1), b"1").unwrap();
    storage.put(&file("snapshot", 2), b"2").unwrap();
    assert_eq!(
        storage.latest_version(&role("snapshot")).unwrap(),
        Some(Version(2))
    );

    // Another worker uploads 3..=13 and a new role.
    for v in 3..=13u32 {
        let key = format!("{v}.snapshot.json");
        let response = raw.put_object(&key, v.to_string().as_bytes()).unwrap();
        assert_eq!(response.status_code(), 200);
    }
    assert_eq!(
        raw.put_object("1.dev.json", b"dev").unwrap().status_code(),
        200
    );

    assert_eq!(
        storage.get_latest(&role("snapshot")).unwrap(),
        Some((Version(13), b"13".to_vec()))
    );
    assert_eq!(
        storage.get_latest(&role("dev")).unwrap(),
        Some((Version(1), b"dev".to_vec()))
    );

    // A worker started now has no cache: exponential probing finds 13.
    let cold = AwsS3::connect(&moto.config("rstuf-behind")).unwrap();
    assert_eq!(
        cold.latest_version(&role("snapshot")).unwrap(),
        Some(Version(13))
    );
    assert_eq!(cold.latest_version(&role("bins-0")).unwrap(), None);
}

#[test]
fn uploads_carry_the_configured_acl() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-acl");
    let public = AwsS3::connect(&moto.config("rstuf-acl")).unwrap();
    public.put(&file("root", 1), b"r").unwrap();
    let mut config = moto.config("rstuf-acl");
    config.acl = None;
    let private = AwsS3::connect(&config).unwrap();
    private.put(&file("root", 2), b"r").unwrap();

    assert_eq!(
        moto.grants("rstuf-acl", "1.root.json"),
        "[('CanonicalUser', 'FULL_CONTROL'), \
         ('http://acs.amazonaws.com/groups/global/AllUsers', 'READ')]"
    );
    assert_eq!(
        moto.grants("rstuf-acl", "2.root.json"),
        "[('CanonicalUser', 'FULL_CONTROL')]"
    );
}

#[test]
fn a_missing_bucket_fails_at_connect() {
    let moto = Moto::start();
    let err = AwsS3::connect(&moto.config("rstuf-nobucket")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "S3 bucket 'rstuf-nobucket' not found at {}/rstuf-nobucket; \
             create it or fix the bucket name",
            moto.endpoint()
        )
    );
}

#[test]
fn an_unreachable_server_names_the_bucket_and_key() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-gone");
    let storage = AwsS3::connect(&moto.config("rstuf-gone")).unwrap();
    drop(moto);

    let err = storage.get(&role("root"), Version(1)).unwrap_err();
    assert!(matches!(err, Error::S3 { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot download s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
    let err = storage.latest_version(&role("root")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot check for s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
    let err = storage.put(&file("root", 1), b"r").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot upload s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
}
