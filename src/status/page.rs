//! The status page: placeholder until written.

/// Placeholder until the page is written.
pub fn render(snapshot: &super::Snapshot) -> String {
    format!("<pre>{}</pre>", snapshot.accounts.len())
}
