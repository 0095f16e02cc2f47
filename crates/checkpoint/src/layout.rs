//! Object names under a destination's prefix.

/// Directory holding all checkpoint objects.
pub const DIR: &str = "checkpoints";
/// The lock object.
pub const LOCK: &str = "checkpoints/LOCK";
/// The job's meta object (config, job id).
pub const META: &str = "checkpoints/checkpoint.meta";
/// Directory of fence objects, one per epoch.
pub const FENCES: &str = "checkpoints/fences";
/// Directory of record files.
pub const DATA: &str = "checkpoints/data";

/// Name of the fence object of `epoch`.
pub fn fence(epoch: u64) -> String {
    format!("{FENCES}/{epoch:020}.fence")
}

/// Name of record file `seq` written at `epoch`.
pub fn data(epoch: u64, seq: u64) -> String {
    format!("{DATA}/{epoch:020}-{seq:010}.cpt")
}

/// Parses a fence object's file name (last component) into its epoch.
pub fn parse_fence(file: &str) -> Option<u64> {
    let digits = file.strip_suffix(".fence")?;
    parse_digits(digits, 20)
}

/// Parses a record file's name (last component) into (epoch, seq).
pub fn parse_data(file: &str) -> Option<(u64, u64)> {
    let stem = file.strip_suffix(".cpt")?;
    let (e, s) = stem.split_once('-')?;
    Some((parse_digits(e, 20)?, parse_digits(s, 10)?))
}

fn parse_digits(s: &str, len: usize) -> Option<u64> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let d = data(7, 42);
        let file = d.rsplit('/').next().unwrap_or_default();
        assert_eq!(parse_data(file), Some((7, 42)));
        let f = fence(9);
        let file = f.rsplit('/').next().unwrap_or_default();
        assert_eq!(parse_fence(file), Some(9));
        assert_eq!(parse_data("7-42.cpt"), None);
        assert_eq!(parse_fence("x.fence"), None);
    }
}
