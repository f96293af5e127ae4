//! `openapi.yaml` read for tests: its operations, its examples, and a JSON Schema validator
//! over its schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use boon::{Compiler, Draft, SchemaIndex, Schemas};
use serde_json::Value;

/// Where the document is registered for the validator; `$ref`s resolve against it.
const BASE: &str = "urn:darktrace-export:openapi";

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub struct Spec {
    doc: Value,
    compiler: RefCell<Compiler>,
    schemas: RefCell<Schemas>,
    compiled: RefCell<HashMap<String, SchemaIndex>>,
}

impl Spec {
    /// The spec as the binary serves it.
    pub fn load() -> Spec {
        let doc: Value = serde_norway::from_str(darktrace_export::http::docs::OPENAPI_YAML)
            .expect("openapi.yaml parses");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V2020_12);
        compiler
            .add_resource(BASE, doc.clone())
            .expect("spec registers");
        Spec {
            doc,
            compiler: RefCell::new(compiler),
            schemas: RefCell::new(Schemas::new()),
            compiled: RefCell::new(HashMap::new()),
        }
    }

    /// The node at a `#/json/pointer`.
    pub fn at(&self, pointer: &str) -> &Value {
        self.doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("no {pointer} in openapi.yaml"))
    }

    /// Every (METHOD, path) the spec documents.
    pub fn operations(&self) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if METHODS.contains(&method.as_str()) {
                    operations.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    /// Validates `instance` against the schema at `pointer`.
    pub fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let index = {
            let mut compiled = self.compiled.borrow_mut();
            match compiled.get(pointer) {
                Some(index) => *index,
                None => {
                    let index = self
                        .compiler
                        .borrow_mut()
                        .compile(&format!("{BASE}{pointer}"), &mut self.schemas.borrow_mut())
                        .map_err(|e| format!("schema {pointer} does not compile: {e}"))?;
                    compiled.insert(pointer.to_owned(), index);
                    index
                }
            }
        };
        self.schemas
            .borrow()
            .validate(instance, index)
            .map_err(|e| format!("{e:#}"))
    }

    /// Every example with the pointer of the schema it illustrates and where it stands:
    /// `example` and `examples` of media types and parameters (following `$ref`s).
    pub fn examples(&self) -> Vec<(String, Value, String)> {
        let mut found = Vec::new();
        self.collect_examples(&self.doc, "#".to_owned(), &mut found);
        found
    }

    fn collect_examples(&self, node: &Value, at: String, found: &mut Vec<(String, Value, String)>) {
        match node {
            Value::Object(map) => {
                if map.contains_key("schema") {
                    let schema = format!("{at}/schema");
                    if let Some(example) = map.get("example") {
                        found.push((schema.clone(), example.clone(), format!("{at}/example")));
                    }
                    if let Some(Value::Object(examples)) = map.get("examples") {
                        for (name, example) in examples {
                            let example = match example.get("$ref").and_then(Value::as_str) {
                                Some(target) => self.at(target),
                                None => example,
                            };
                            let value = example.get("value").unwrap_or_else(|| {
                                panic!("example {at}/examples/{name} has no value")
                            });
                            found.push((
                                schema.clone(),
                                value.clone(),
                                format!("{at}/examples/{name}"),
                            ));
                        }
                    }
                }
                for (key, child) in map {
                    self.collect_examples(child, format!("{at}/{}", escape(key)), found);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.collect_examples(child, format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }

    /// Checks an answer against the documented response for its status and media type.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: &Value,
    ) -> Result<(), String> {
        let operation = format!("#/paths/{}/{}", escape(path), method.to_ascii_lowercase());
        let mut response = format!("{operation}/responses/{status}");
        let node = self
            .doc
            .pointer(response.trim_start_matches('#'))
            .ok_or_else(|| format!("status {status} is not documented"))?;
        if let Some(target) = node.get("$ref").and_then(Value::as_str) {
            response = target.to_owned();
        }
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let schema = format!("{response}/content/{}/schema", escape(essence));
        if self.doc.pointer(schema.trim_start_matches('#')).is_none() {
            return Err(format!("{essence} is not documented for {status}"));
        }
        self.validate(&schema, body)
    }
}

/// JSON Pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
