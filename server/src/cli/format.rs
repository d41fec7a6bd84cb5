//! How `keel consume` prints a record: `text` (the value alone, as Kafka's console consumer
//! does), `json` (one object per line with every field), or `kcat` (a template in kcat's
//! `-f` language). Keys, values and headers are printed as UTF-8, invalid bytes replaced.

use super::records::ConsumedRecord;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The value, one record per line.
    Text,
    /// One JSON object per line: topic, partition, offset, timestamp, timestampType, key,
    /// value, headers (null key or value as null).
    Json,
    /// The `--kcat-format` template.
    Kcat,
}

/// The default `--kcat-format`: every field, one record per line.
pub const DEFAULT_KCAT_FORMAT: &str = "%t [%p] @%o %T key=%k headers=%h: %s\\n";

/// Renders `record` of `topic`/`partition` in `format` (`template` for [`Format::Kcat`]).
pub fn render(
    format: Format,
    template: &str,
    topic: &str,
    partition: i32,
    record: &ConsumedRecord,
) -> String {
    match format {
        Format::Text => {
            let mut s = text(record.value.as_deref());
            s.push('\n');
            s
        }
        Format::Json => {
            let mut s = String::new();
            s.push_str("{\"topic\":");
            json_string(&mut s, topic);
            s.push_str(&format!(
                ",\"partition\":{partition},\"offset\":{},\"timestamp\":{},\"timestampType\":\"{}\"",
                record.offset,
                record.timestamp_ms,
                record.timestamp_type.name()
            ));
            s.push_str(",\"key\":");
            json_bytes(&mut s, record.key.as_deref());
            s.push_str(",\"value\":");
            json_bytes(&mut s, record.value.as_deref());
            s.push_str(",\"headers\":[");
            for (i, (k, v)) in record.headers.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"key\":");
                json_string(&mut s, k);
                s.push_str(",\"value\":");
                json_bytes(&mut s, v.as_deref());
                s.push('}');
            }
            s.push_str("]}\n");
            s
        }
        Format::Kcat => kcat(template, topic, partition, record),
    }
}

/// kcat's `-f` tokens: %t topic, %p partition, %o offset, %T timestamp (ms), %k key,
/// %K key length (-1 if null), %s value, %S value length, %h headers as `k=v,k2=v2`, %%;
/// escapes `\n`, `\t`, `\r`, `\\`.
fn kcat(template: &str, topic: &str, partition: i32, r: &ConsumedRecord) -> String {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.push_str(topic),
                Some('p') => out.push_str(&partition.to_string()),
                Some('o') => out.push_str(&r.offset.to_string()),
                Some('T') => out.push_str(&r.timestamp_ms.to_string()),
                Some('k') => out.push_str(&text(r.key.as_deref())),
                Some('K') => out.push_str(&len(r.key.as_deref()).to_string()),
                Some('s') => out.push_str(&text(r.value.as_deref())),
                Some('S') => out.push_str(&len(r.value.as_deref()).to_string()),
                Some('h') => {
                    let hs: Vec<String> = r
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{k}={}", text(v.as_deref())))
                        .collect();
                    out.push_str(&hs.join(","));
                }
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn text(b: Option<&[u8]>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn len(b: Option<&[u8]>) -> i64 {
    b.map_or(-1, |b| b.len() as i64)
}

fn json_bytes(out: &mut String, b: Option<&[u8]>) {
    match b {
        None => out.push_str("null"),
        Some(b) => json_string(out, &String::from_utf8_lossy(b)),
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 escapes).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::records::TimestampType;

    fn rec() -> ConsumedRecord {
        ConsumedRecord {
            offset: 7,
            timestamp_ms: 1_000,
            timestamp_type: TimestampType::CreateTime,
            key: Some(b"k\"1".to_vec()),
            value: Some(b"line\tone".to_vec()),
            headers: vec![("a".into(), Some(b"1".to_vec())), ("b".into(), None)],
        }
    }

    #[test]
    fn formats_render_every_field() {
        assert_eq!(render(Format::Text, "", "t", 2, &rec()), "line\tone\n");
        assert_eq!(
            render(Format::Json, "", "t", 2, &rec()),
            "{\"topic\":\"t\",\"partition\":2,\"offset\":7,\"timestamp\":1000,\
             \"timestampType\":\"CreateTime\",\"key\":\"k\\\"1\",\"value\":\"line\\tone\",\
             \"headers\":[{\"key\":\"a\",\"value\":\"1\"},{\"key\":\"b\",\"value\":null}]}\n"
        );
        assert_eq!(
            render(Format::Kcat, DEFAULT_KCAT_FORMAT, "t", 2, &rec()),
            "t [2] @7 1000 key=k\"1 headers=a=1,b=: line\tone\n"
        );
        assert_eq!(
            render(Format::Kcat, "%K %S %% %x\\t", "t", 0, &rec()),
            "3 8 % %x\t"
        );
    }
}
