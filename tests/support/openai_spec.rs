//! Validators built from OpenAI's published Chat Completions schema (tests/fixtures, a copy of
//! openai/openai-openapi, MIT): what the client sends must be a valid `x-roots.request`, and what the
//! fake server sends must be a valid `x-roots.response` / `x-roots.stream_chunk`.
#![allow(dead_code)]

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The three compiled root validators plus the request's known top-level property names.
pub struct OpenAiSpec {
    request: jsonschema::Validator,
    response: jsonschema::Validator,
    stream_chunk: jsonschema::Validator,
    request_properties: BTreeSet<String>,
}

/// The spec, loaded and compiled once per test binary.
pub fn spec() -> &'static OpenAiSpec {
    static SPEC: OnceLock<OpenAiSpec> = OnceLock::new();
    SPEC.get_or_init(load)
}

fn load() -> OpenAiSpec {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openai-chat-completions.json"
    );
    let text = std::fs::read_to_string(path).expect("read the OpenAI spec fixture");
    let mut document: Value = serde_json::from_str(&text).expect("the OpenAI spec is JSON");
    // The document says OpenAPI 3.1 but still carries OpenAPI 3.0 `nullable: true` flags, which JSON
    // Schema ignores; OpenAI really sends `finish_reason: null` and `usage: null`, so translate them.
    translate_nullable(&mut document);
    let request_properties = request_properties(&document);
    let build = |root: &str| {
        // The whole document is the root schema, so `$ref: #/components/schemas/...` resolves.
        let mut schema = document.clone();
        schema["$ref"] = json!(format!("#/x-roots/{root}"));
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .unwrap_or_else(|e| panic!("compile x-roots.{root}: {e}"))
    };
    OpenAiSpec {
        request: build("request"),
        response: build("response"),
        stream_chunk: build("stream_chunk"),
        request_properties,
    }
}

/// `{nullable: true, ...rest}` becomes `{anyOf: [rest, {type: null}]}` everywhere.
fn translate_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                translate_nullable(v);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let rest: Map<String, Value> = std::mem::take(map);
                map.insert(
                    "anyOf".into(),
                    json!([Value::Object(rest), {"type": "null"}]),
                );
            }
        }
        Value::Array(items) => items.iter_mut().for_each(translate_nullable),
        _ => {}
    }
}

/// Top-level property names of `CreateChatCompletionRequest` (following `allOf` and `$ref`), because
/// the schema allows unknown properties and so would not catch a misspelled field.
fn request_properties(document: &Value) -> BTreeSet<String> {
    fn collect(document: &Value, schema: &Value, out: &mut BTreeSet<String>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            if let Some(target) = document.pointer(pointer) {
                collect(document, target, out);
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            out.extend(props.keys().cloned());
        }
        for key in ["allOf", "anyOf"] {
            for part in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect(document, part, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    collect(document, &document["x-roots"]["request"], &mut out);
    assert!(
        out.contains("messages") && out.contains("max_tokens"),
        "{out:?}"
    );
    out
}

fn check(validator: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the OpenAI spec:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

/// Panics unless `body` is a valid `POST /chat/completions` request body with only known fields.
pub fn assert_valid_request(body: &Value) {
    let spec = spec();
    check(&spec.request, "request body", body);
    for key in body.as_object().expect("request body is an object").keys() {
        assert!(
            spec.request_properties.contains(key),
            "unknown request field {key:?}"
        );
    }
}

/// Panics unless `body` is a valid chat completion response.
pub fn assert_valid_response(body: &Value) {
    check(&spec().response, "response body", body);
}

/// Panics unless `chunk` is a valid streamed chunk.
pub fn assert_valid_chunk(chunk: &Value) {
    check(&spec().stream_chunk, "stream chunk", chunk);
}

/// The validators really reject bad documents (guards against a validator that accepts anything).
pub fn assert_validators_reject_garbage() {
    let spec = spec();
    assert!(
        !spec.request.is_valid(&json!({"model": "m"})),
        "messages is required"
    );
    assert!(
        !spec
            .request
            .is_valid(&json!({"model": "m", "messages": []})),
        "minItems 1"
    );
    assert!(!spec
        .request
        .is_valid(&json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})));
    assert!(!spec.request.is_valid(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3})
    ));
    assert!(!spec.response.is_valid(&json!({"choices": []})));
    assert!(!spec
        .stream_chunk
        .is_valid(&json!({"object": "chat.completion"})));
}
