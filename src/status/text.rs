//! `status` output: placeholder until written.

/// Placeholder until written.
pub fn table(snapshot: &super::Snapshot, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "{} accounts", snapshot.accounts.len())
}

/// Placeholder until written.
pub fn json(snapshot: &super::Snapshot, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, snapshot)?;
    writeln!(out)
}
