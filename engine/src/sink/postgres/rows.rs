//! Rows of the PostgreSQL sink outside the happy path and the envelope: events into the DLQ
//! file, and the typed layout's column values.

use crate::sink::dlq::{DlqFile, DlqLineRef, H_SPATE_ID, H_TRACEPARENT};
use crate::sink::Outcomes;
use spate_gen::EventMeta;

use super::copy;
use super::typed::{self, ColType, Column, Raw};
/// Events `rows` (identity, payload) into the DLQ file with `reason`: dead-lettered, or failed
/// if the file cannot be written.
pub(super) fn dead_letter(
    dlq: &mut DlqFile,
    table: &str,
    run_id: &str,
    rows: &[(&EventMeta, &[u8])],
    acct: &mut Outcomes,
    reason: &str,
) {
    let n = rows.len() as u64;
    let ids: Vec<([u8; 55], [u8; 64], usize)> = rows
        .iter()
        .map(|(m, _)| {
            let (mut tp, mut id) = ([0u8; 55], [0u8; 64]);
            spate_gen::hex::traceparent(&mut tp, m.trace_id, m.span_id);
            let k = spate_gen::hex::event_id(&mut id, run_id, m.worker, m.seq);
            (tp, id, k)
        })
        .collect();
    let pairs: Vec<[(&str, &[u8]); 2]> =
        ids.iter().map(|(tp, id, k)| [(H_TRACEPARENT, &tp[..]), (H_SPATE_ID, &id[..*k])]).collect();
    let lines = rows.iter().zip(&pairs).map(|((_, payload), h)| DlqLineRef {
        topic: table,
        key: None,
        headers: h,
        payload,
        error: reason,
        attempts: 0,
    });
    match dlq.append(lines) {
        Ok(_) => acct.dead_lettered += n,
        Err(e) => {
            spate_core::rate_log::warn(
                "dlq_file",
                &format!("cannot write the DLQ file {}: {e}", dlq.path().display()),
            );
            acct.failed += n;
        }
    }
}

/// Appends the typed columns' values of the JSON event `line` (binary COPY fields): each
/// member's value into its column's slot, then the slots in order, NULL where a member is
/// missing or does not fit its column's type.
pub(super) fn typed_values(
    out: &mut Vec<u8>,
    cols: &[Column],
    slots: &mut [Raw],
    scratch: &mut Vec<u8>,
    line: &[u8],
) {
    slots.fill(Raw::Null);
    typed::scan(line, |key, v| {
        if let Some(i) = cols.iter().position(|c| c.name.as_bytes() == key) {
            slots[i] = v;
        }
    });
    for (c, v) in cols.iter().zip(slots.iter()) {
        let text = |a: u32, b: u32| &line[a as usize..b as usize];
        let lit = |a: u32, b: u32| std::str::from_utf8(text(a, b)).ok();
        match (c.ty, *v) {
            (ColType::Text, Raw::Str(a, b, false) | Raw::Lit(a, b)) => copy::field(out, text(a, b)),
            (ColType::Text, Raw::Str(a, b, true)) => {
                scratch.clear();
                if typed::unescape(text(a, b), scratch) {
                    copy::field(out, scratch);
                } else {
                    copy::null(out);
                }
            }
            (ColType::BigInt, Raw::Lit(a, b)) => {
                match lit(a, b).and_then(|s| s.parse::<i64>().ok()) {
                    Some(x) => copy::field(out, &x.to_be_bytes()),
                    None => copy::null(out),
                }
            }
            (ColType::Double, Raw::Lit(a, b)) => {
                match lit(a, b).and_then(|s| s.parse::<f64>().ok()) {
                    Some(x) => copy::field(out, &x.to_bits().to_be_bytes()),
                    None => copy::null(out),
                }
            }
            (ColType::Bool, Raw::Lit(a, b)) => match text(a, b) {
                b"true" => copy::field(out, &[1]),
                b"false" => copy::field(out, &[0]),
                _ => copy::null(out),
            },
            _ => copy::null(out),
        }
    }
}
