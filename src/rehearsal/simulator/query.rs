//! What the transaction endpoints (`load-job` and the summaries) accept and
//! what they cover: a request's window, site and page, validated as the
//! service does, and the transactions such a request selects. One home for
//! both, so an export and its summaries always see the same transactions.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::chain::Chain;
use super::gate::{ApiError, Caller};
use super::jobs::Criteria;

/// The longest span one request's window may cover.
const MAX_SPAN_SECS: i64 = 24 * 60 * 60;

/// The validated parameters of a transaction request (without the API id).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TransactionQuery {
    pub start: i64,
    pub end: i64,
    /// The `site=` argument; `None` when absent or empty.
    pub site: Option<String>,
    pub limit: u32,
    /// Page number, starting at 1.
    pub offset: u32,
}

impl TransactionQuery {
    /// The request's criteria for `caller`: the site is the argument or the
    /// `X-Sonnys-Site-Code` header, which must agree when both are given.
    pub(super) fn criteria(self, caller: &Caller) -> Result<Criteria, ApiError> {
        let site = match (self.site, caller.site_header.clone()) {
            (Some(arg), Some(header)) if arg != header => return Err(ApiError::SiteArgsMismatch),
            (arg, header) => arg.or(header),
        };
        Ok(Criteria {
            api_id: caller.api_id.clone(),
            start: self.start,
            end: self.end,
            site,
            limit: self.limit,
            offset: self.offset,
        })
    }
}

/// Validates `startDate`, `endDate`, `site`, `limit` (within `limits`) and
/// `offset`, collecting every message as the service does. `now` is Unix
/// seconds; `startDate` may reach back `max_age_days`.
pub(super) fn validate(
    params: &HashMap<String, String>,
    now: i64,
    max_age_days: i64,
    limits: RangeInclusive<u32>,
) -> Result<TransactionQuery, Vec<String>> {
    let mut messages = Vec::new();
    let mut integer = |name: &str, what: &str| -> Option<i64> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") => {
                messages.push(format!("The {name} field is required."));
                None
            }
            Some(v) => match v.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    messages.push(format!("The {name} must be {what}."));
                    None
                }
            },
        }
    };
    let limit_rule = if limits.start() == limits.end() {
        limits.start().to_string()
    } else {
        format!("between {} and {}", limits.start(), limits.end())
    };
    let start = integer("startDate", "an integer Unix timestamp in seconds");
    let end = integer("endDate", "an integer Unix timestamp in seconds");
    let limit = integer("limit", &limit_rule);
    let offset = integer("offset", "an integer page number of at least 1");

    let limit = limit.and_then(|l| match u32::try_from(l) {
        Ok(l) if limits.contains(&l) => Some(l),
        _ => {
            messages.push(format!("The limit must be {limit_rule}."));
            None
        }
    });
    let offset = offset.and_then(|o| match u32::try_from(o) {
        Ok(o) if o >= 1 => Some(o),
        _ => {
            messages.push("The offset must be an integer page number of at least 1.".into());
            None
        }
    });
    if let Some(start) = start {
        if start < now - max_age_days * 86_400 {
            messages.push(format!(
                "The startDate must be no older than {max_age_days} days before today."
            ));
        }
    }
    if let Some(end) = end {
        if end > now {
            messages.push("The endDate must not be in the future.".into());
        }
    }
    if let (Some(start), Some(end)) = (start, end) {
        if start > end {
            messages.push("The startDate must be before or equal to the endDate.".into());
        } else if end - start > MAX_SPAN_SECS {
            messages.push("The date range must be within a 24 hour time span.".into());
        }
    }
    match (start, end, limit, offset) {
        (Some(start), Some(end), Some(limit), Some(offset)) if messages.is_empty() => {
            Ok(TransactionQuery {
                start,
                end,
                // An empty `site=` is read as absent, as form handling
                // behind such services usually does; see the module docs.
                site: params.get("site").filter(|s| !s.is_empty()).cloned(),
                limit,
                offset,
            })
        }
        _ => Err(messages),
    }
}

/// Every transaction `criteria` cover, as full canonical records (the
/// spec shape, overrides applied, nothing after `now`), sorted by
/// completeDate then id: the order pages are cut from. An unknown site
/// code is not an error: it simply covers nothing.
pub(super) fn select(
    chain: &Chain,
    account: usize,
    criteria: &Criteria,
    now: DateTime<Utc>,
    overrides: Option<&HashMap<String, Value>>,
) -> Vec<Value> {
    let sites = &chain.accounts()[account].sites;
    let chosen: Vec<usize> = (0..sites.len())
        .filter(|&s| {
            criteria
                .site
                .as_ref()
                .map_or(true, |code| *code == sites[s].code)
        })
        .collect();
    chain.window(
        account,
        &chosen,
        criteria.start,
        criteria.end,
        now,
        overrides,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NOW: i64 = 1_790_000_000;
    const EXPORT: RangeInclusive<u32> = 100..=100;
    const SUMMARIES: RangeInclusive<u32> = 1..=100;

    #[test]
    fn a_valid_request_passes() {
        let p = params(&[
            ("startDate", "1789900000"),
            ("endDate", "1789986400"),
            ("limit", "100"),
            ("offset", "2"),
            ("site", "N01"),
        ]);
        assert_eq!(
            validate(&p, NOW, 183, EXPORT),
            Ok(TransactionQuery {
                start: 1_789_900_000,
                end: 1_789_986_400,
                site: Some("N01".into()),
                limit: 100,
                offset: 2
            })
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let p = params(&[
            ("startDate", "abc"),
            ("endDate", &(NOW + 10).to_string()),
            ("limit", "50"),
            ("offset", "0"),
        ]);
        let messages = validate(&p, NOW, 183, EXPORT).expect_err("invalid");
        assert_eq!(messages.len(), 4, "{messages:?}");
    }

    #[test]
    fn spans_over_a_day_and_old_starts_are_rejected() {
        let check = |start: i64, end: i64| {
            validate(
                &params(&[
                    ("startDate", &start.to_string()),
                    ("endDate", &end.to_string()),
                    ("limit", "100"),
                    ("offset", "1"),
                ]),
                NOW,
                183,
                EXPORT,
            )
        };
        assert!(check(NOW - 86_400, NOW).is_ok());
        assert!(check(NOW - 86_401, NOW).is_err());
        assert!(check(NOW, NOW - 1).is_err());
        assert!(check(NOW - 184 * 86_400, NOW - 183 * 86_400).is_err());
    }

    #[test]
    fn summaries_take_any_limit_from_1_to_100_and_the_export_only_100() {
        let with_limit = |limit: &str, limits: RangeInclusive<u32>| {
            let start = (NOW - 3_600).to_string();
            validate(
                &params(&[
                    ("startDate", &start),
                    ("endDate", &NOW.to_string()),
                    ("limit", limit),
                    ("offset", "1"),
                ]),
                NOW,
                183,
                limits,
            )
            .map(|q| q.limit)
        };
        assert_eq!(with_limit("1", SUMMARIES), Ok(1));
        assert_eq!(with_limit("100", SUMMARIES), Ok(100));
        for refused in ["0", "101", "-1", "ten", ""] {
            let messages = with_limit(refused, SUMMARIES).expect_err(refused);
            assert_eq!(messages.len(), 1, "{refused}: {messages:?}");
        }
        assert_eq!(
            with_limit("50", EXPORT),
            Err(vec!["The limit must be 100.".to_string()])
        );
    }
}
