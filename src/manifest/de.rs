//! A strict, path-tracking deserializer over a `serde_json::Value`.
//!
//! k8s-openapi's `Deserialize` impls skip unknown keys (they read them as
//! `serde::de::IgnoredAny`), and a plain `serde_json::from_value` forgets where a
//! wrong type sat. This deserializer knows the path of every value it hands out, so
//! it (1) records the path of every key the target type ignored — exactly the
//! unknown fields, whatever their value, `null` included — and (2) attaches the path
//! to the first error raised below it (`spec.containers[0].ports[0].containerPort:
//! invalid type: string "x", expected i32`).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::Value;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path, displayed as `spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    pub(crate) fn key(&self, key: &str) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        FieldPath(segs)
    }
    pub(crate) fn index(&self, index: usize) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        FieldPath(segs)
    }
    /// The path with every index replaced by `[*]`, as written in the field tables.
    pub(crate) fn pattern(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(_) => out.push_str("[*]"),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A deserialization error with the path of the value that caused it.
#[derive(Debug, Clone)]
pub(crate) struct DeError {
    /// `None` until the error has travelled up to the value it belongs to.
    pub(crate) path: Option<FieldPath>,
    pub(crate) message: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            message: msg.to_string(),
        }
    }
}

impl DeError {
    fn at(mut self, path: &FieldPath) -> Self {
        if self.path.is_none() {
            self.path = Some(path.clone());
        }
        self
    }
}

/// Deserializes `T` from `value`, strictly. Returns the value, or the first error
/// with its path; `ignored` receives the path of every unknown key met on the way.
pub(crate) fn from_value<T: de::DeserializeOwned>(
    value: &Value,
    ignored: &RefCell<Vec<FieldPath>>,
) -> Result<T, DeError> {
    let root = FieldPath::default();
    T::deserialize(De {
        value,
        path: root.clone(),
        ignored,
    })
    .map_err(|e| e.at(&root))
}

struct De<'a> {
    value: &'a Value,
    path: FieldPath,
    ignored: &'a RefCell<Vec<FieldPath>>,
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(Seq {
                iter: items.iter().enumerate(),
                path: self.path,
                ignored: self.ignored,
            }),
            Value::Object(map) => visitor.visit_map(MapAcc {
                iter: map.iter(),
                current: None,
                path: self.path,
                ignored: self.ignored,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    /// Only reached for keys the target type does not know: an unknown field.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.ignored.borrow_mut().push(self.path);
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<'a, I> {
    iter: I,
    path: FieldPath,
    ignored: &'a RefCell<Vec<FieldPath>>,
}

impl<'de, 'a, I> de::SeqAccess<'de> for Seq<'a, I>
where
    I: Iterator<Item = (usize, &'a Value)>,
{
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, value)) = self.iter.next() else {
            return Ok(None);
        };
        let path = self.path.index(i);
        seed.deserialize(De {
            value,
            path: path.clone(),
            ignored: self.ignored,
        })
        .map(Some)
        .map_err(|e| e.at(&path))
    }
}

struct MapAcc<'a> {
    iter: serde_json::map::Iter<'a>,
    current: Option<(&'a String, &'a Value)>,
    path: FieldPath,
    ignored: &'a RefCell<Vec<FieldPath>>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.current = Some((key, value));
        let key_path = self.path.key(key);
        seed.deserialize(key.as_str().into_deserializer())
            .map(Some)
            .map_err(|e: DeError| e.at(&key_path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self
            .current
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value requested before key"))?;
        let path = self.path.key(key);
        seed.deserialize(De {
            value,
            path: path.clone(),
            ignored: self.ignored,
        })
        .map_err(|e| e.at(&path))
    }
}

/// Looks up `path` in `value`, mutably.
pub(crate) fn lookup_mut<'v>(value: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let mut cur = value;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the key at `path` (whose last step must be a key) from `value`.
/// Returns whether something was removed.
pub(crate) fn remove_key(value: &mut Value, path: &FieldPath) -> bool {
    let Some((Seg::Key(last), parent)) = path.0.split_last() else {
        return false;
    };
    match lookup_mut(value, parent) {
        Some(Value::Object(m)) => m.shift_remove(last).is_some(),
        _ => false,
    }
}
