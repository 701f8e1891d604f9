//! Hash-bin delegation (TAP 15 succinct roles) as RSTUF lays it out: every
//! artifact path belongs to exactly one `bins-<hex>` role, picked by the top
//! bits of the sha256 of the path.
use sha2::{Digest, Sha256};

use super::{Error, Result};

/// The bin-count range RSTUF accepts (`NUMBER_OF_DELEGATED_BINS`).
pub const MIN_BINS: u32 = 2;
pub const MAX_BINS: u32 = 16384;

/// The index of one hash bin, below the number of bins of its [`HashBins`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinNumber(pub u32);

/// The succinct-roles delegation: `2^bit_length` bins named
/// `<prefix>-<zero-padded lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashBins {
    bit_length: u8,
    name_prefix: String,
    suffix_len: usize,
}

impl HashBins {
    /// Bins described by a succinct-roles delegation. Python-tuf allows
    /// 1..=32 bits; RSTUF itself never goes past 14 (16384 bins).
    pub fn new(bit_length: u8, name_prefix: &str) -> Result<Self> {
        if !(1..=32).contains(&bit_length) {
            return Err(Error::BinCount(1u64 << bit_length.min(63)));
        }
        let largest = (1u64 << bit_length) - 1;
        Ok(HashBins {
            bit_length,
            name_prefix: name_prefix.to_owned(),
            suffix_len: format!("{largest:x}").len(),
        })
    }

    /// Bins for `NUMBER_OF_DELEGATED_BINS` (a power of two, 2..=16384) with
    /// RSTUF's `bins` prefix.
    pub fn from_count(count: u64) -> Result<Self> {
        let in_range = (u64::from(MIN_BINS)..=u64::from(MAX_BINS)).contains(&count);
        if !in_range || !count.is_power_of_two() {
            return Err(Error::BinCount(count));
        }
        // A power of two in range: its log2 fits in a u8.
        HashBins::new(count.trailing_zeros() as u8, "bins")
    }

    pub fn bit_length(&self) -> u8 {
        self.bit_length
    }

    pub fn name_prefix(&self) -> &str {
        &self.name_prefix
    }

    pub fn count(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// The bin an artifact path falls in: the first `bit_length` bits of
    /// sha256(path as UTF-8).
    pub fn bin_for_path(&self, path: &str) -> BinNumber {
        let digest = Sha256::digest(path.as_bytes());
        let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        BinNumber((u64::from(head) >> (32 - u32::from(self.bit_length))) as u32)
    }

    /// The role name of a bin, e.g. `bins-0a` for bin 10 of 256.
    pub fn role_name(&self, bin: BinNumber) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin.0,
            width = self.suffix_len
        )
    }

    /// The role name responsible for an artifact path.
    pub fn role_for_path(&self, path: &str) -> String {
        self.role_name(self.bin_for_path(path))
    }

    /// Every bin in order, as (number, role name).
    pub fn roles(&self) -> impl Iterator<Item = (BinNumber, String)> + '_ {
        (0..self.count()).map(move |n| {
            let bin = BinNumber(n as u32);
            (bin, self.role_name(bin))
        })
    }

    /// The bin a role name denotes, if it is one of these bins. Upper-case
    /// hex is accepted as python-tuf's `int(x, 16)` does; the other oddities
    /// `int()` tolerates (signs, spaces, underscores) are not, since no RSTUF
    /// component ever writes such names.
    pub fn parse_role(&self, role: &str) -> Option<BinNumber> {
        let suffix = role
            .strip_prefix(self.name_prefix.as_str())?
            .strip_prefix('-')?;
        if suffix.len() != self.suffix_len || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = u64::from_str_radix(suffix, 16).ok()?;
        (n < self.count()).then_some(BinNumber(n as u32))
    }

    pub fn is_bin_role(&self, role: &str) -> bool {
        self.parse_role(role).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    #[test]
    fn every_table_of_the_vectors_matches() {
        let doc = testdata::json("vectors/tuf/hash-bins.json");
        let tables = doc["tables"].as_array().unwrap();
        assert_eq!(tables.len(), 4);
        for t in tables {
            let n = t["number_of_bins"].as_u64().unwrap();
            let bins = HashBins::from_count(n).unwrap();
            assert_eq!(
                u64::from(bins.bit_length()),
                t["bit_length"].as_u64().unwrap()
            );
            assert_eq!(bins.suffix_len as u64, t["suffix_len"].as_u64().unwrap());
            let names: Vec<String> = bins.roles().map(|(_, name)| name).collect();
            assert_eq!(names.len() as u64, n);
            for (i, first) in t["first_roles"].as_array().unwrap().iter().enumerate() {
                assert_eq!(names[i], first.as_str().unwrap());
            }
            assert_eq!(names.last().unwrap(), t["last_role"].as_str().unwrap());
            for (role, expected) in t["is_delegated_role"].as_object().unwrap() {
                assert_eq!(
                    bins.is_bin_role(role),
                    expected.as_bool().unwrap(),
                    "{n} {role}"
                );
            }
            let mapping = t["mapping"].as_array().unwrap();
            assert!(mapping.len() >= 20);
            for m in mapping {
                let path = m["path"].as_str().unwrap();
                assert_eq!(
                    bins.role_for_path(path),
                    m["role"].as_str().unwrap(),
                    "{n} {path:?}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_through_parse() {
        let bins = HashBins::from_count(256).unwrap();
        for (bin, name) in bins.roles() {
            assert_eq!(bins.parse_role(&name), Some(bin));
        }
        assert_eq!(bins.parse_role("bins-FF"), Some(BinNumber(255)));
        assert_eq!(bins.parse_role("bins-+f"), None);
    }

    #[test]
    fn counts_outside_rstuf_range_are_refused() {
        for bad in [0, 1, 3, 100, 32768] {
            assert_eq!(HashBins::from_count(bad), Err(Error::BinCount(bad)));
        }
    }
}
