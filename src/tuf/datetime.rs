//! UTC points in time with whole-second precision, as TUF `expires` carries
//! them (`YYYY-MM-DDTHH:MM:SSZ`).
//!
//! Hand-written on purpose: the only calendar work needed is the proleptic
//! Gregorian day count, and keeping it here means one well-tested type serves
//! metadata, Redis settings and the database alike. The range is Python's
//! `datetime` range (years 1 to 9999) so every value we hold is one the
//! Python worker could also hold and print with a four-digit year.
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Error, Result};

const SECONDS_PER_DAY: i64 = 86_400;
const SECONDS_PER_HOUR: i64 = 3_600;
/// 0001-01-01T00:00:00Z.
const MIN_SECONDS: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Seconds since the Unix epoch, UTC, always within years 1..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

/// A calendar date and time of day, the broken-down form of [`UtcTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    pub fn from_unix_seconds(seconds: i64) -> Result<Self> {
        if (MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
            Ok(UtcTime(seconds))
        } else {
            Err(Error::TimeOutOfRange(format!(
                "{seconds} seconds since the Unix epoch is outside years 1..=9999"
            )))
        }
    }

    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// The instant a calendar date and time names; rejects impossible dates
    /// (February 30th, hour 24, second 60) like Python's `datetime` does.
    pub fn from_civil(c: Civil) -> Result<Self> {
        check_civil(&c).map_err(Error::TimeOutOfRange)?;
        Ok(Self::from_checked_civil(c))
    }

    fn from_checked_civil(c: Civil) -> Self {
        let days = days_from_civil(c.year, c.month, c.day);
        let time = i64::from(c.hour * 3600 + c.minute * 60 + c.second);
        UtcTime(days * SECONDS_PER_DAY + time)
    }

    pub fn civil(self) -> Civil {
        let days = self.0.div_euclid(SECONDS_PER_DAY);
        // rem_euclid keeps the time of day in 0..86400 even before 1970, and
        // that fits u32.
        let time = self.0.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: time / 3600,
            minute: time / 60 % 60,
            second: time % 60,
        }
    }

    /// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`. Python's `strptime` would also
    /// take one-digit fields; no TUF writer produces those, and accepting them
    /// would make parse → format change the bytes a signature covers.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::TimeFormat {
            input: input.to_owned(),
            reason,
        };
        let b = input.as_bytes();
        if b.len() != 20 {
            return Err(bad(format!("{} bytes long instead of 20", b.len())));
        }
        for (pos, want) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ] {
            if b[pos] != want {
                return Err(bad(format!(
                    "expected '{}' at position {}",
                    want as char,
                    pos + 1
                )));
            }
        }
        let number = |from: usize, to: usize| -> Result<u32> {
            b[from..to]
                .iter()
                .enumerate()
                .try_fold(0u32, |acc, (i, &d)| {
                    if d.is_ascii_digit() {
                        Ok(acc * 10 + u32::from(d - b'0'))
                    } else {
                        Err(bad(format!(
                            "expected a digit at position {}",
                            from + i + 1
                        )))
                    }
                })
        };
        let civil = Civil {
            year: i64::from(number(0, 4)?),
            month: number(5, 7)?,
            day: number(8, 10)?,
            hour: number(11, 13)?,
            minute: number(14, 16)?,
            second: number(17, 19)?,
        };
        check_civil(&civil).map_err(bad)?;
        Ok(Self::from_checked_civil(civil))
    }

    /// The current time, truncated to the second as RSTUF does before it
    /// sets an expiry.
    pub fn now() -> Result<Self> {
        Self::from_system_time(SystemTime::now())
    }

    /// Rounds down to the whole second (also before 1970, matching Python's
    /// `replace(microsecond=0)`).
    pub fn from_system_time(t: SystemTime) -> Result<Self> {
        let out_of_range = || Error::TimeOutOfRange(format!("system time {t:?}"));
        let seconds = match t.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).map_err(|_| out_of_range())?,
            Err(before) => {
                let before = before.duration();
                let whole = i64::try_from(before.as_secs()).map_err(|_| out_of_range())?;
                -whole - i64::from(before.subsec_nanos() > 0)
            }
        };
        Self::from_unix_seconds(seconds).map_err(|_| out_of_range())
    }

    /// The `SystemTime` for this instant. The `postgres` crate maps
    /// `SystemTime` to `timestamp without time zone` as naive UTC, which is
    /// how upstream's columns are meant to be read (session time zone UTC).
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_secs(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    pub fn add_seconds(self, seconds: i64) -> Result<Self> {
        let out_of_range = || Error::TimeOutOfRange(format!("{self} plus {seconds} seconds"));
        let sum = self.0.checked_add(seconds).ok_or_else(out_of_range)?;
        Self::from_unix_seconds(sum).map_err(|_| out_of_range())
    }

    pub fn add_hours(self, hours: i64) -> Result<Self> {
        self.add_scaled(hours, SECONDS_PER_HOUR, "hours")
    }

    pub fn add_days(self, days: i64) -> Result<Self> {
        self.add_scaled(days, SECONDS_PER_DAY, "days")
    }

    fn add_scaled(self, count: i64, unit: i64, unit_name: &str) -> Result<Self> {
        let seconds = count
            .checked_mul(unit)
            .ok_or_else(|| Error::TimeOutOfRange(format!("{self} plus {count} {unit_name}")))?;
        self.add_seconds(seconds)
    }
}

/// Why a broken-down date is not a real instant, if it is not.
fn check_civil(c: &Civil) -> std::result::Result<(), String> {
    if !(1..=9999).contains(&c.year) {
        return Err(format!("year {} is not in 1..=9999", c.year));
    }
    let checks = [
        ("month", c.month, 1, 12),
        ("day", c.day, 1, days_in_month(c.year, c.month)),
        ("hour", c.hour, 0, 23),
        ("minute", c.minute, 0, 59),
        ("second", c.second, 0, 59),
    ];
    match checks
        .iter()
        .find(|(_, value, low, high)| !(low..=high).contains(&value))
    {
        Some((field, value, low, high)) => Err(format!(
            "{field} {value} is not in {low}..={high} ({:04}-{:02})",
            c.year, c.month
        )),
        None => Ok(()),
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Day counts below use a year that starts on March 1st, so the leap day is
// the last day of the year and every month length except February's follows
// a fixed 5-month pattern of 153 days; an era is the 400-year Gregorian cycle
// of 146097 days. 719468 is the number of days from 0000-03-01 to 1970-01-01.

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both values are small (1..=31, 1..=12) by construction.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

impl FromStr for UtcTime {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> UtcTime {
        UtcTime::from_civil(Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
        .unwrap()
    }

    #[test]
    fn known_instants_match_unix_time() {
        // Values from Python: int(datetime(..., tzinfo=timezone.utc).timestamp()).
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2036-01-01T00:00:00Z", 2_082_758_400),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("1969-12-31T23:59:59Z", -1),
            ("1900-03-01T00:00:00Z", -2_203_891_200),
            ("0001-01-01T00:00:00Z", MIN_SECONDS),
            ("9999-12-31T23:59:59Z", MAX_SECONDS),
        ];
        for (text, seconds) in cases {
            let t = UtcTime::parse(text).unwrap();
            assert_eq!(t.unix_seconds(), seconds, "{text}");
            assert_eq!(t.to_string(), text);
            assert_eq!(UtcTime::from_unix_seconds(seconds).unwrap(), t);
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // 1600..2000 covers every leap-year rule (div by 4, 100 and 400).
        let mut expected = at(1600, 1, 1, 12, 0, 0);
        for year in 1600..2000 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let t = at(year, month, day, 12, 0, 0);
                    assert_eq!(t, expected, "{year}-{month}-{day}");
                    let c = t.civil();
                    assert_eq!((c.year, c.month, c.day), (year, month, day));
                    expected = expected.add_days(1).unwrap();
                }
            }
        }
        assert_eq!(expected.to_string(), "2000-01-01T12:00:00Z");
    }

    #[test]
    fn leap_days_exist_only_in_leap_years() {
        for ok in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "1600-02-29T00:00:00Z",
        ] {
            assert!(UtcTime::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
        ] {
            let err = UtcTime::parse(bad).unwrap_err();
            assert!(matches!(err, Error::TimeFormat { .. }), "{bad}");
            assert!(err.to_string().contains("day 29 is not in 1..=28"), "{err}");
        }
        assert_eq!(
            at(2024, 2, 28, 23, 0, 0).add_hours(1).unwrap().to_string(),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            at(2023, 2, 28, 23, 0, 0).add_hours(1).unwrap().to_string(),
            "2023-03-01T00:00:00Z"
        );
    }

    #[test]
    fn anything_but_the_exact_form_is_rejected() {
        let cases = [
            ("2036-01-01T00:00:00", "19 bytes long instead of 20"),
            ("2036-01-01T00:00:00.000000Z", "27 bytes long instead of 20"),
            ("2036-01-01 00:00:00Z", "expected 'T' at position 11"),
            ("2036-01-01T00:00:00+", "expected 'Z' at position 20"),
            ("2036/01/01T00:00:00Z", "expected '-' at position 5"),
            ("2036-1-01T00:00:00Z", "19 bytes long instead of 20"),
            ("2036-0a-01T00:00:00Z", "expected a digit at position 7"),
            ("+036-01-01T00:00:00Z", "expected a digit at position 1"),
            ("2036-13-01T00:00:00Z", "month 13 is not in 1..=12"),
            ("2036-04-31T00:00:00Z", "day 31 is not in 1..=30"),
            ("2036-01-00T00:00:00Z", "day 0 is not in 1..=31"),
            ("2036-01-01T24:00:00Z", "hour 24 is not in 0..=23"),
            ("2036-01-01T00:60:00Z", "minute 60 is not in 0..=59"),
            ("2036-01-01T00:00:60Z", "second 60 is not in 0..=59"),
            ("0000-01-01T00:00:00Z", "year 0 is not in 1..=9999"),
            ("2036-01-01t00:00:00z", "expected 'T' at position 11"),
            ("２０３6-01-01T00:00:Z", "bytes long instead of 20"),
        ];
        for (input, reason) in cases {
            let err = UtcTime::parse(input).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::TimeFormat { input: i, .. } if i == input),
                "{input}"
            );
            assert!(text.contains(reason), "{input}: {text}");
        }
    }

    #[test]
    fn vector_expiries_parse_and_print_unchanged() {
        let manifest = testdata::json("vectors/tuf/repo-bins/1-after-bootstrap/manifest.json");
        let signed = manifest["files"][0]["signed_canonical_utf8"]
            .as_str()
            .unwrap();
        let signed: serde_json::Value = serde_json::from_str(signed).unwrap();
        let expires: UtcTime = serde_json::from_value(signed["expires"].clone()).unwrap();
        assert_eq!(expires, at(2036, 1, 1, 0, 0, 0));
        assert_eq!(serde_json::to_value(expires).unwrap(), signed["expires"]);
    }

    #[test]
    fn arithmetic_carries_across_units_and_checks_range() {
        let t = at(2035, 12, 31, 23, 59, 59);
        assert_eq!(
            t.add_seconds(1).unwrap().to_string(),
            "2036-01-01T00:00:00Z"
        );
        assert_eq!(
            t.add_days(-365).unwrap().to_string(),
            "2034-12-31T23:59:59Z"
        );
        assert_eq!(t.add_hours(25).unwrap().to_string(), "2036-01-02T00:59:59Z");
        assert!(t.add_seconds(1).unwrap() > t && t.add_seconds(-1).unwrap() < t);
        let end = at(9999, 12, 31, 23, 59, 59);
        assert!(matches!(end.add_seconds(1), Err(Error::TimeOutOfRange(_))));
        assert!(matches!(
            t.add_days(i64::MAX),
            Err(Error::TimeOutOfRange(_))
        ));
        assert!(matches!(
            UtcTime::from_unix_seconds(MIN_SECONDS - 1),
            Err(Error::TimeOutOfRange(_))
        ));
    }

    #[test]
    fn system_time_conversion_truncates_to_the_second() {
        let after = UNIX_EPOCH + Duration::new(2_082_758_400, 999_999_999);
        assert_eq!(
            UtcTime::from_system_time(after).unwrap().to_string(),
            "2036-01-01T00:00:00Z"
        );
        let before = UNIX_EPOCH - Duration::new(0, 1);
        assert_eq!(
            UtcTime::from_system_time(before).unwrap().to_string(),
            "1969-12-31T23:59:59Z"
        );
        for seconds in [-86_401, 0, 2_082_758_400] {
            let t = UtcTime::from_unix_seconds(seconds).unwrap();
            assert_eq!(UtcTime::from_system_time(t.to_system_time()).unwrap(), t);
        }
        let now = UtcTime::now().unwrap();
        assert!(now > at(2024, 1, 1, 0, 0, 0) && now < at(2200, 1, 1, 0, 0, 0));
    }

    #[test]
    fn serde_uses_the_string_form_and_reports_bad_input() {
        let t: UtcTime = serde_json::from_str("\"2036-01-01T00:00:00Z\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2036-01-01T00:00:00Z\""
        );
        let err = serde_json::from_str::<UtcTime>("\"2036-01-01\"").unwrap_err();
        assert!(err.to_string().contains("invalid timestamp \"2036-01-01\""));
        assert!(serde_json::from_str::<UtcTime>("2082758400").is_err());
    }
}
