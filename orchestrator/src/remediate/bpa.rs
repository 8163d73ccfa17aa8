//! S3 Block Public Access settings as the two S3 playbooks read them: the account's
//! (`enable-s3-account-bpa`) and a bucket's (`block-public-bucket`) have the same four.

/// The four settings, in the order AWS lists them; `None` when there is no configuration.
pub(crate) type Settings = Option<[bool; 4]>;

const NAMES: [&str; 4] = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"];

/// The settings from a configuration's four optional flags (an absent flag is off).
pub(crate) fn from_flags(flags: [Option<bool>; 4]) -> [bool; 4] {
    flags.map(|f| f.unwrap_or(false))
}

pub(crate) fn all_on(s: Settings) -> bool {
    s.is_some_and(|s| s.iter().all(|on| *on))
}

/// For people: what is off, or that all four are on.
pub(crate) fn describe(s: Settings) -> String {
    match s {
        None => "no Block Public Access configuration".into(),
        Some(s) => {
            let off: Vec<&str> = NAMES.iter().zip(s).filter(|(_, on)| !on).map(|(n, _)| *n).collect();
            if off.is_empty() { "all four settings on".into() } else { format!("off: {}", off.join(", ")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_describe_what_is_off() {
        assert!(!all_on(None));
        assert!(all_on(Some([true; 4])));
        assert_eq!(describe(Some([true, false, true, false])), "off: IgnorePublicAcls, RestrictPublicBuckets");
        assert_eq!(describe(None), "no Block Public Access configuration");
        assert_eq!(from_flags([Some(true), None, Some(false), Some(true)]), [true, false, false, true]);
    }
}
