//! Avro object container files, read and written generically: the header's writer schema
//! drives the decoding of every record into a JSON value, and the encoding of JSON values
//! back. Iceberg keeps its manifest lists and manifests in this format.
//!
//! Supported: every primitive, records, enums, arrays, maps, unions, fixed, named-type
//! references, and the `null` and `deflate` codecs (what Java Iceberg, pyiceberg and
//! iceberg-rust write by default). Logical types decode as their underlying type. Bytes and
//! fixed values decode as lowercase hex strings. A truncated or malformed file is an error,
//! never a panic or a short read.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;

/// A malformed or unsupported Avro file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AvroError(String);

fn err<T>(message: impl Into<String>) -> Result<T, AvroError> {
    Err(AvroError(message.into()))
}

/// A decoded container file: its metadata and its records.
#[derive(Debug, Clone)]
pub struct AvroFile {
    /// The header's metadata (`avro.schema`, `avro.codec`, and the writer's own keys).
    pub metadata: HashMap<String, Vec<u8>>,
    /// Every record, in file order.
    pub records: Vec<Value>,
}

impl AvroFile {
    /// A metadata value as text.
    pub fn meta_text(&self, key: &str) -> Option<String> {
        self.metadata
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads a whole container file.
pub fn read_container(bytes: &[u8]) -> Result<AvroFile, AvroError> {
    let mut cur = Cursor { bytes, pos: 0 };
    if cur.take(4)? != b"Obj\x01" {
        return err("not an Avro container file (bad magic)");
    }
    let metadata = read_metadata(&mut cur)?;
    let sync: Vec<u8> = cur.take(16)?.to_vec();
    let schema_text = metadata
        .get("avro.schema")
        .ok_or_else(|| AvroError("Avro file without avro.schema".into()))?;
    let schema_json: Value = serde_json::from_slice(schema_text)
        .map_err(|e| AvroError(format!("Avro schema is not JSON: {e}")))?;
    let mut names = HashMap::new();
    let schema = Schema::parse(&schema_json, None, &mut names)?;
    let codec = metadata.get("avro.codec").map_or_else(
        || "null".to_string(),
        |c| String::from_utf8_lossy(c).into_owned(),
    );
    let mut records = Vec::new();
    while !cur.at_end() {
        let count = cur.long()?;
        let size =
            usize::try_from(cur.long()?).map_err(|_| AvroError("negative block size".into()))?;
        let raw = cur.take(size)?;
        let data = match codec.as_str() {
            "null" => raw.to_vec(),
            "deflate" => {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut out)
                    .map_err(|e| AvroError(format!("corrupt deflate block: {e}")))?;
                out
            }
            other => {
                return err(format!(
                    "Avro codec '{other}' is not supported (null and deflate are)"
                ));
            }
        };
        let mut block = Cursor {
            bytes: &data,
            pos: 0,
        };
        for _ in 0..count {
            records.push(decode(&schema, &mut block, &names)?);
        }
        if cur.take(16)? != sync.as_slice() {
            return err("Avro block sync marker mismatch: the file is corrupt");
        }
    }
    Ok(AvroFile { metadata, records })
}

/// Writes `records` as a container file with the writer schema `schema_text` (JSON), the
/// extra header `metadata`, and the deflate codec. Values are encoded as [`read_container`]
/// decodes them (bytes and fixed as hex strings; a missing record field as null).
pub fn write_container(
    schema_text: &str,
    metadata: &[(String, Vec<u8>)],
    records: &[Value],
) -> Result<Vec<u8>, AvroError> {
    let schema_json: Value = serde_json::from_str(schema_text)
        .map_err(|e| AvroError(format!("Avro schema is not JSON: {e}")))?;
    let mut names = HashMap::new();
    let schema = Schema::parse(&schema_json, None, &mut names)?;
    let mut out = b"Obj\x01".to_vec();
    let mut header: Vec<(String, Vec<u8>)> = metadata
        .iter()
        .filter(|(k, _)| k != "avro.schema" && k != "avro.codec")
        .cloned()
        .collect();
    header.push(("avro.schema".into(), schema_text.as_bytes().to_vec()));
    header.push(("avro.codec".into(), b"deflate".to_vec()));
    put_long(header.len() as i64, &mut out);
    for (k, v) in &header {
        put_bytes(k.as_bytes(), &mut out);
        put_bytes(v, &mut out);
    }
    put_long(0, &mut out);
    let sync: [u8; 16] = rand::random();
    out.extend_from_slice(&sync);
    if !records.is_empty() {
        let mut block = Vec::new();
        for record in records {
            encode(&schema, record, &mut block, &names)?;
        }
        let mut deflated =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut deflated, &block)
            .and_then(|()| deflated.finish())
            .map_err(|e| AvroError(format!("compressing an Avro block: {e}")))
            .map(|data| {
                put_long(records.len() as i64, &mut out);
                put_long(data.len() as i64, &mut out);
                out.extend_from_slice(&data);
            })?;
        out.extend_from_slice(&sync);
    }
    Ok(out)
}

fn encode(
    schema: &Schema,
    value: &Value,
    out: &mut Vec<u8>,
    names: &HashMap<String, Schema>,
) -> Result<(), AvroError> {
    let mismatch = || AvroError(format!("value {value} does not fit its Avro schema"));
    match schema {
        Schema::Null => {}
        Schema::Boolean => out.push(u8::from(value.as_bool().ok_or_else(mismatch)?)),
        Schema::Int | Schema::Long => put_long(value.as_i64().ok_or_else(mismatch)?, out),
        Schema::Float => {
            out.extend_from_slice(&(value.as_f64().ok_or_else(mismatch)? as f32).to_le_bytes());
        }
        Schema::Double => {
            out.extend_from_slice(&value.as_f64().ok_or_else(mismatch)?.to_le_bytes());
        }
        Schema::String => put_bytes(value.as_str().ok_or_else(mismatch)?.as_bytes(), out),
        Schema::Bytes => put_bytes(
            &hex::decode(value.as_str().ok_or_else(mismatch)?).map_err(|_| mismatch())?,
            out,
        ),
        Schema::Fixed(n) => {
            let bytes =
                hex::decode(value.as_str().ok_or_else(mismatch)?).map_err(|_| mismatch())?;
            if bytes.len() != *n {
                return Err(mismatch());
            }
            out.extend_from_slice(&bytes);
        }
        Schema::Enum(symbols) => {
            let s = value.as_str().ok_or_else(mismatch)?;
            let i = symbols.iter().position(|x| x == s).ok_or_else(mismatch)?;
            put_long(i as i64, out);
        }
        Schema::Record(fields) => {
            for (name, field) in fields {
                encode(field, value.get(name).unwrap_or(&Value::Null), out, names)?;
            }
        }
        Schema::Array(items) => {
            let list = value.as_array().ok_or_else(mismatch)?;
            if !list.is_empty() {
                put_long(list.len() as i64, out);
                for item in list {
                    encode(items, item, out, names)?;
                }
            }
            put_long(0, out);
        }
        Schema::Map(values) => {
            let map = value.as_object().ok_or_else(mismatch)?;
            if !map.is_empty() {
                put_long(map.len() as i64, out);
                for (k, v) in map {
                    put_bytes(k.as_bytes(), out);
                    encode(values, v, out, names)?;
                }
            }
            put_long(0, out);
        }
        Schema::Union(branches) => {
            let index = if value.is_null() {
                branches.iter().position(|b| matches!(b, Schema::Null))
            } else {
                branches.iter().position(|b| !matches!(b, Schema::Null))
            }
            .ok_or_else(mismatch)?;
            put_long(index as i64, out);
            encode(&branches[index], value, out, names)?;
        }
        Schema::Ref(name) => {
            let named = names
                .get(name)
                .ok_or_else(|| AvroError(format!("unknown Avro type '{name}'")))?;
            encode(named, value, out, names)?;
        }
    }
    Ok(())
}

fn put_long(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    put_long(b.len() as i64, out);
    out.extend_from_slice(b);
}

fn read_metadata(cur: &mut Cursor<'_>) -> Result<HashMap<String, Vec<u8>>, AvroError> {
    let mut map = HashMap::new();
    loop {
        let mut count = cur.long()?;
        if count == 0 {
            return Ok(map);
        }
        if count < 0 {
            count = -count;
            cur.long()?; // block size in bytes
        }
        for _ in 0..count {
            let key = cur.string()?;
            let value = cur.bytes()?.to_vec();
            map.insert(key, value);
        }
    }
}

/// A parsed Avro schema.
#[derive(Debug, Clone)]
enum Schema {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Record(Vec<(String, Schema)>),
    Enum(Vec<String>),
    Array(Box<Schema>),
    Map(Box<Schema>),
    Union(Vec<Schema>),
    Fixed(usize),
    Ref(String),
}

impl Schema {
    fn parse(
        json: &Value,
        namespace: Option<&str>,
        names: &mut HashMap<String, Schema>,
    ) -> Result<Schema, AvroError> {
        match json {
            Value::String(name) => Ok(match name.as_str() {
                "null" => Schema::Null,
                "boolean" => Schema::Boolean,
                "int" => Schema::Int,
                "long" => Schema::Long,
                "float" => Schema::Float,
                "double" => Schema::Double,
                "bytes" => Schema::Bytes,
                "string" => Schema::String,
                other => Schema::Ref(full_name(other, namespace)),
            }),
            Value::Array(branches) => Ok(Schema::Union(
                branches
                    .iter()
                    .map(|b| Schema::parse(b, namespace, names))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(obj) => {
                let kind = obj
                    .get("type")
                    .ok_or_else(|| AvroError("Avro schema without type".into()))?;
                let Some(kind) = kind.as_str() else {
                    return Schema::parse(kind, namespace, names);
                };
                let ns = obj.get("namespace").and_then(Value::as_str).or(namespace);
                let name = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|n| full_name(n, ns));
                let parsed = match kind {
                    "record" | "error" => {
                        let fields = obj
                            .get("fields")
                            .and_then(Value::as_array)
                            .ok_or_else(|| AvroError("Avro record without fields".into()))?;
                        let mut parsed = Vec::with_capacity(fields.len());
                        for f in fields {
                            let fname = f
                                .get("name")
                                .and_then(Value::as_str)
                                .ok_or_else(|| AvroError("Avro field without name".into()))?;
                            let ftype = f.get("type").ok_or_else(|| {
                                AvroError(format!("Avro field {fname} without type"))
                            })?;
                            parsed.push((fname.to_string(), Schema::parse(ftype, ns, names)?));
                        }
                        Schema::Record(parsed)
                    }
                    "enum" => Schema::Enum(
                        obj.get("symbols")
                            .and_then(Value::as_array)
                            .map(|s| {
                                s.iter()
                                    .filter_map(|v| v.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    "array" => Schema::Array(Box::new(Schema::parse(
                        obj.get("items")
                            .ok_or_else(|| AvroError("Avro array without items".into()))?,
                        ns,
                        names,
                    )?)),
                    "map" => Schema::Map(Box::new(Schema::parse(
                        obj.get("values")
                            .ok_or_else(|| AvroError("Avro map without values".into()))?,
                        ns,
                        names,
                    )?)),
                    "fixed" => Schema::Fixed(
                        obj.get("size")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| AvroError("Avro fixed without size".into()))?
                            as usize,
                    ),
                    // A primitive with attributes (a logical type): its underlying type.
                    other => Schema::parse(&Value::String(other.to_string()), ns, names)?,
                };
                if let Some(name) = name
                    && matches!(
                        parsed,
                        Schema::Record(_) | Schema::Enum(_) | Schema::Fixed(_)
                    )
                {
                    names.insert(name, parsed.clone());
                }
                Ok(parsed)
            }
            other => err(format!("unexpected Avro schema {other}")),
        }
    }
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

fn decode(
    schema: &Schema,
    cur: &mut Cursor<'_>,
    names: &HashMap<String, Schema>,
) -> Result<Value, AvroError> {
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Bool(cur.take(1)?[0] != 0),
        Schema::Int | Schema::Long => Value::from(cur.long()?),
        Schema::Float => {
            let b = cur.take(4)?;
            number(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        Schema::Double => {
            let b: [u8; 8] = cur.take(8)?.try_into().expect("took 8 bytes");
            number(f64::from_le_bytes(b))
        }
        Schema::Bytes => Value::String(hex::encode(cur.bytes()?)),
        Schema::String => Value::String(cur.string()?),
        Schema::Fixed(n) => Value::String(hex::encode(cur.take(*n)?)),
        Schema::Enum(symbols) => {
            let i = usize::try_from(cur.long()?)
                .map_err(|_| AvroError("negative enum index".into()))?;
            Value::String(
                symbols
                    .get(i)
                    .cloned()
                    .ok_or_else(|| AvroError(format!("enum index {i} out of range")))?,
            )
        }
        Schema::Record(fields) => {
            let mut obj = Map::new();
            for (name, field) in fields {
                obj.insert(name.clone(), decode(field, cur, names)?);
            }
            Value::Object(obj)
        }
        Schema::Array(items) => {
            let mut out = Vec::new();
            read_blocks(cur, |cur| {
                out.push(decode(items, cur, names)?);
                Ok(())
            })?;
            Value::Array(out)
        }
        Schema::Map(values) => {
            let mut out = Map::new();
            read_blocks(cur, |cur| {
                let key = cur.string()?;
                out.insert(key, decode(values, cur, names)?);
                Ok(())
            })?;
            Value::Object(out)
        }
        Schema::Union(branches) => {
            let i = usize::try_from(cur.long()?)
                .map_err(|_| AvroError("negative union index".into()))?;
            let branch = branches
                .get(i)
                .ok_or_else(|| AvroError(format!("union branch {i} out of range")))?;
            decode(branch, cur, names)?
        }
        Schema::Ref(name) => {
            let named = names
                .get(name)
                .ok_or_else(|| AvroError(format!("unknown Avro type '{name}'")))?;
            decode(named, cur, names)?
        }
    })
}

/// Reads the blocks of an array or map, calling `item` once per item.
fn read_blocks(
    cur: &mut Cursor<'_>,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<(), AvroError>,
) -> Result<(), AvroError> {
    loop {
        let mut count = cur.long()?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            count = -count;
            cur.long()?; // block size in bytes
        }
        for _ in 0..count {
            item(cur)?;
        }
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AvroError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| AvroError("Avro data ends early: the file is truncated".into()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A zig-zag varint.
    fn long(&mut self) -> Result<i64, AvroError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.take(1)?[0];
            if shift >= 64 {
                return err("Avro varint too long");
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok((value >> 1) as i64 ^ -((value & 1) as i64))
    }

    fn bytes(&mut self) -> Result<&'a [u8], AvroError> {
        let len = usize::try_from(self.long()?).map_err(|_| AvroError("negative length".into()))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, AvroError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| AvroError("Avro string is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str, out: &mut Vec<u8>) {
        put_bytes(s.as_bytes(), out);
    }

    fn zigzag(v: i64, out: &mut Vec<u8>) {
        put_long(v, out);
    }

    /// A container with schema `schema` and one block of `body` holding `count` records.
    fn container(schema: &str, count: i64, body: &[u8]) -> Vec<u8> {
        let mut out = b"Obj\x01".to_vec();
        zigzag(1, &mut out);
        string("avro.schema", &mut out);
        string(schema, &mut out);
        zigzag(0, &mut out);
        let sync = [7u8; 16];
        out.extend_from_slice(&sync);
        zigzag(count, &mut out);
        zigzag(body.len() as i64, &mut out);
        out.extend_from_slice(body);
        out.extend_from_slice(&sync);
        out
    }

    #[test]
    fn records_with_unions_arrays_maps_and_named_types_decode() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":"long"},
            {"name":"b","type":["null","string"]},
            {"name":"c","type":{"type":"array","items":"int"}},
            {"name":"d","type":{"type":"map","values":"long"}},
            {"name":"e","type":{"type":"fixed","name":"f2","size":2}},
            {"name":"g","type":"f2"}]}"#;
        let mut body = Vec::new();
        zigzag(-3, &mut body); // a
        zigzag(1, &mut body); // b: string branch
        string("hi", &mut body);
        zigzag(2, &mut body); // c: one block of two
        zigzag(5, &mut body);
        zigzag(-6, &mut body);
        zigzag(0, &mut body);
        zigzag(-1, &mut body); // d: a block of one with its byte size
        zigzag(3, &mut body);
        string("k", &mut body);
        zigzag(9, &mut body);
        zigzag(0, &mut body);
        body.extend_from_slice(&[0xab, 0x01]); // e
        body.extend_from_slice(&[0x00, 0xff]); // g, by reference to f2
        let file = read_container(&container(schema, 1, &body)).unwrap();
        assert_eq!(
            file.records,
            vec![
                serde_json::json!({"a": -3, "b": "hi", "c": [5, -6], "d": {"k": 9}, "e": "ab01", "g": "00ff"})
            ]
        );
    }

    #[test]
    fn written_files_read_back_the_same_records() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":"long"},
            {"name":"b","type":["null","string"]},
            {"name":"c","type":{"type":"array","items":"int"}},
            {"name":"d","type":{"type":"map","values":"long"}},
            {"name":"e","type":["null",{"type":"fixed","name":"f2","size":2}]},
            {"name":"f","type":"bytes"}]}"#;
        let records = vec![
            serde_json::json!({"a": -3, "b": "hi", "c": [5, -6], "d": {"k": 9}, "e": "ab01", "f": ""}),
            serde_json::json!({"a": 1_i64 << 40, "b": null, "c": [], "d": {}, "e": null, "f": "00ff"}),
        ];
        let meta = vec![("k".to_string(), b"v".to_vec())];
        let file = read_container(&write_container(schema, &meta, &records).unwrap()).unwrap();
        assert_eq!(file.records, records);
        assert_eq!(file.meta_text("k").as_deref(), Some("v"));
        assert_eq!(file.meta_text("avro.codec").as_deref(), Some("deflate"));
        let bad = [serde_json::json!({"a": "x"})];
        assert!(write_container(schema, &[], &bad).is_err());
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let schema = r#"{"type":"record","name":"r","fields":[{"name":"s","type":"string"}]}"#;
        let mut body = Vec::new();
        string("hello", &mut body);
        let full = container(schema, 1, &body);
        for cut in [3, 20, full.len() - 20, full.len() - 1] {
            assert!(read_container(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_container(&full).is_ok());
    }
}
