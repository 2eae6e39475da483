//! A small JSON writer for `info --json` (one flat object on one line; no
//! dependency needed for that). Strings are escaped by the library's
//! `format::json`, which writes the dataset files.

use std::fmt::Write as _;

use npy_append::Dtype;

/// A JSON value.
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An unsigned integer.
    UInt(u64),
    /// A string.
    Str(String),
    /// An array.
    List(Vec<Value>),
    /// An object, keys in order.
    Object(Vec<(&'static str, Value)>),
}

impl Value {
    /// `Some(n)` as a number, `None` as `null`.
    pub fn opt_uint(n: Option<u64>) -> Self {
        n.map_or(Self::Null, Self::UInt)
    }

    /// A list of numbers.
    pub fn uints(values: &[u64]) -> Self {
        Self::List(values.iter().map(|&v| Self::UInt(v)).collect())
    }

    /// numpy's `dtype.descr` as `json.dumps` writes it: a type string, or for
    /// a structured dtype a list of `[name, descr]` / `[name, descr, shape]`
    /// (a titled field's name is `[title, name]`).
    pub fn descr(dtype: &Dtype) -> Self {
        match dtype {
            Dtype::Scalar(s) => Self::Str(s.type_str()),
            Dtype::Structured(fields) => Self::List(
                fields
                    .iter()
                    .map(|f| {
                        let name = match &f.title {
                            Some(t) => {
                                Self::List(vec![Self::Str(t.clone()), Self::Str(f.name.clone())])
                            }
                            None => Self::Str(f.name.clone()),
                        };
                        let mut item = vec![name, Self::descr(&f.dtype)];
                        if !f.shape.is_empty() {
                            item.push(Self::uints(&f.shape));
                        }
                        Self::List(item)
                    })
                    .collect(),
            ),
        }
    }

    /// The JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Str(s) => write_str(out, s),
            Self::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal, escaped as the library's dataset files write it.
fn write_str(out: &mut String, s: &str) {
    npy_append::format::json::write_str(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            Value::Str("a\"b\\c\n\u{1}é".into()).render(),
            r#""a\"b\\c\n\u0001é""#
        );
    }

    #[test]
    fn structured_descr_is_numpys_list() {
        let d = Dtype::parse_descr("[('a', '<i4'), (('t', 'b'), '<f8', (3,))]").unwrap();
        assert_eq!(
            Value::descr(&d).render(),
            r#"[["a", "<i4"], [["t", "b"], "<f8", [3]]]"#
        );
    }
}
