//! The `[reporting]` section: how the `reporting` views count a wash.

use serde::Deserialize;

use super::{invalid, ConfigError};

/// The `[reporting]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportingSettings {
    /// The item departments that make a transaction a wash
    /// (`reporting.wash_departments`), written to the database at `migrate`
    /// and at start; `None` leaves the table as it is (seeded with `wash`,
    /// or as an operator edited it).
    pub wash_departments: Option<Vec<String>>,
}

/// The section as written: a TOML list, or one comma-separated string (as
/// an environment variable gives it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReporting {
    wash_departments: Option<NameList>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NameList {
    List(Vec<String>),
    Text(String),
}

impl ReportingSettings {
    /// Check the section: names are trimmed, none empty, none twice in any
    /// case, and the list not empty (no item would count as a wash).
    pub(super) fn check(raw: RawReporting) -> Result<Self, ConfigError> {
        const KEY: &str = "reporting.wash_departments";
        let Some(list) = raw.wash_departments else {
            return Ok(Self::default());
        };
        let names: Vec<String> = match list {
            NameList::List(names) => names,
            NameList::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        let mut kept: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                return Err(invalid(KEY, "holds an empty department name"));
            }
            if kept.iter().any(|k| k.to_lowercase() == name.to_lowercase()) {
                return Err(invalid(
                    KEY,
                    format!("names `{name}` twice (names are compared without case)"),
                ));
            }
            kept.push(name.to_owned());
        }
        if kept.is_empty() {
            return Err(invalid(
                KEY,
                "is empty: no item would count as a wash; name at least one department (the default is [\"wash\"])",
            ));
        }
        Ok(Self {
            wash_departments: Some(kept),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: NameList) -> Result<ReportingSettings, ConfigError> {
        ReportingSettings::check(RawReporting {
            wash_departments: Some(list),
        })
    }

    #[test]
    fn wash_departments_are_trimmed_and_read_from_a_list_or_a_comma_separated_text() {
        let expected = Some(vec!["Express Washes".to_string(), "Full Serve".to_string()]);
        let list = check(NameList::List(vec![
            " Express Washes".into(),
            "Full Serve ".into(),
        ]))
        .unwrap();
        assert_eq!(list.wash_departments, expected);
        let text = check(NameList::Text("Express Washes, Full Serve".into())).unwrap();
        assert_eq!(text.wash_departments, expected);
        assert_eq!(
            ReportingSettings::check(RawReporting::default()).unwrap(),
            ReportingSettings::default()
        );
    }

    #[test]
    fn an_empty_or_repeated_wash_department_is_refused_naming_the_key() {
        for bad in [
            NameList::List(Vec::new()),
            NameList::List(vec!["Wash".into(), " ".into()]),
            NameList::List(vec!["Wash".into(), "WASH".into()]),
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains("reporting.wash_departments"), "{e}");
        }
    }
}
