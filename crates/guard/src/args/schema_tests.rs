use serde_json::json;

use super::*;

fn schema(v: Value) -> ToolSchema {
    ToolSchema::compile(&v).expect("schema compiles")
}

fn read_file() -> ToolSchema {
    schema(json!({
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1}
        },
        "required": ["path"]
    }))
}

#[test]
fn accepts_matching_arguments() {
    let s = read_file();
    assert_eq!(
        s.validate(&json!({"path": "a.txt", "limit": 3}), UnknownArgs::Deny),
        Ok(())
    );
}

#[test]
fn rejects_wrong_type_naming_instance_path() {
    let s = read_file();
    let err = s
        .validate(&json!({"path": 5}), UnknownArgs::Allow)
        .unwrap_err();
    assert_eq!(
        err,
        ArgProblem::Invalid(r#"/path: 5 is not of type "string""#.into())
    );
}

#[test]
fn rejects_missing_required_at_root() {
    let s = read_file();
    let err = s.validate(&json!({}), UnknownArgs::Allow).unwrap_err();
    let ArgProblem::Invalid(detail) = err else {
        panic!("{err:?}")
    };
    assert!(detail.starts_with("(root): "), "{detail}");
    assert!(
        detail.contains("\"path\" is a required property"),
        "{detail}"
    );
}

#[test]
fn accepts_empty_arguments() {
    let s = schema(json!({"type": "object", "properties": {"q": {"type": "string"}}}));
    assert_eq!(s.validate(&json!({}), UnknownArgs::Deny), Ok(()));
}

#[test]
fn rejects_non_object_arguments() {
    let s = read_file();
    assert!(matches!(
        s.validate(&json!("path"), UnknownArgs::Deny),
        Err(ArgProblem::Invalid(_))
    ));
}

#[test]
fn joins_first_errors_on_one_line() {
    let s = schema(json!({
        "type": "object",
        "properties": {
            "a": {"type": "string"}, "b": {"type": "string"},
            "c": {"type": "string"}, "d": {"type": "string"}
        }
    }));
    let err = s
        .validate(
            &json!({"a": 1, "b": 2, "c": 3, "d": "ok\nline"}),
            UnknownArgs::Allow,
        )
        .unwrap_err();
    let ArgProblem::Invalid(detail) = err else {
        panic!("{err:?}")
    };
    assert_eq!(detail.matches(" is not of type ").count(), 3, "{detail}");
    assert!(!detail.contains('\n'));

    let err = s
        .validate(&json!({"a": 1, "b": 2, "c": 3, "d": 4}), UnknownArgs::Allow)
        .unwrap_err();
    let ArgProblem::Invalid(detail) = err else {
        panic!("{err:?}")
    };
    assert!(detail.ends_with("; and more"), "{detail}");
}

#[test]
fn truncates_huge_values_in_errors() {
    let s = read_file();
    let big = "x".repeat(100_000);
    let err = s
        .validate(&json!({"path": "p", "limit": big}), UnknownArgs::Allow)
        .unwrap_err();
    let ArgProblem::Invalid(detail) = err else {
        panic!("{err:?}")
    };
    assert!(detail.chars().count() < 300, "{}", detail.len());
    assert!(detail.starts_with("/limit: "));
}

#[test]
fn rejects_unknown_argument_under_deny() {
    let s = read_file();
    assert_eq!(
        s.validate(&json!({"path": "a", "exec": "sh"}), UnknownArgs::Deny),
        Err(ArgProblem::Unknown("exec".into()))
    );
    // The same call passes when the policy follows the schema (it does not forbid extras).
    assert_eq!(
        s.validate(&json!({"path": "a", "exec": "sh"}), UnknownArgs::Allow),
        Ok(())
    );
}

#[test]
fn rejects_unknown_argument_even_with_additional_properties_true() {
    for extra in [json!(true), json!({})] {
        let s = schema(json!({
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "additionalProperties": extra
        }));
        assert_eq!(
            s.validate(&json!({"path": "a", "x": 1}), UnknownArgs::Deny),
            Err(ArgProblem::Unknown("x".into()))
        );
    }
}

#[test]
fn accepts_extra_arguments_when_additional_properties_is_a_schema() {
    let s = schema(json!({
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "additionalProperties": {"type": "string"}
    }));
    assert_eq!(
        s.validate(&json!({"path": "a", "env": "x"}), UnknownArgs::Deny),
        Ok(())
    );
    // ...but the schema still applies to them.
    assert!(matches!(
        s.validate(&json!({"path": "a", "env": 1}), UnknownArgs::Deny),
        Err(ArgProblem::Invalid(_))
    ));
}

#[test]
fn accepts_pattern_properties_under_deny() {
    let s = schema(json!({
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "patternProperties": {"^x-[a-z]+$": {"type": "string"}}
    }));
    assert_eq!(
        s.validate(&json!({"path": "a", "x-trace": "1"}), UnknownArgs::Deny),
        Ok(())
    );
    assert_eq!(
        s.validate(&json!({"path": "a", "y-trace": "1"}), UnknownArgs::Deny),
        Err(ArgProblem::Unknown("y-trace".into()))
    );
}

#[test]
fn accepts_names_declared_through_combinators_and_local_refs() {
    let s = schema(json!({
        "$defs": {"Common": {"properties": {"verbose": {"type": "boolean"}}}},
        "type": "object",
        "allOf": [{"$ref": "#/$defs/Common"}],
        "oneOf": [
            {"properties": {"url": {"type": "string"}}, "required": ["url"]},
            {"properties": {"path": {"type": "string"}}, "required": ["path"]}
        ]
    }));
    assert_eq!(
        s.validate(&json!({"url": "u", "verbose": true}), UnknownArgs::Deny),
        Ok(())
    );
    assert_eq!(
        s.validate(&json!({"path": "p", "shell": true}), UnknownArgs::Deny),
        Err(ArgProblem::Unknown("shell".into()))
    );
}

#[test]
fn accepts_top_level_ref_to_definitions_in_draft_07() {
    let s = schema(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": "#/definitions/Args",
        "definitions": {
            "Args": {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": false}
        }
    }));
    assert_eq!(s.validate(&json!({"n": 1}), UnknownArgs::Deny), Ok(()));
    assert_eq!(
        s.validate(&json!({"m": 1}), UnknownArgs::Deny),
        Err(ArgProblem::Unknown("m".into()))
    );
    assert!(matches!(
        s.validate(&json!({"m": 1}), UnknownArgs::Allow),
        Err(ArgProblem::Invalid(_))
    ));
}

#[test]
fn honors_draft_07_semantics() {
    // In draft-07 `$ref` ignores its siblings; 2020-12 applies them. `exclusiveMinimum` as a boolean is a
    // draft-04 form and would not compile under 2020-12.
    let d7 = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"any": {}},
        "properties": {"n": {"$ref": "#/definitions/any", "type": "string"}}
    });
    let s = schema(d7);
    assert_eq!(s.validate(&json!({"n": 5}), UnknownArgs::Allow), Ok(()));
    let d2020 = json!({
        "$defs": {"any": {}},
        "properties": {"n": {"$ref": "#/$defs/any", "type": "string"}}
    });
    let s = schema(d2020);
    assert!(s.validate(&json!({"n": 5}), UnknownArgs::Allow).is_err());
}

#[test]
fn rejects_schema_with_remote_ref() {
    // A hostile server must not make palisade fetch anything: compiling fails, the caller denies.
    let err = ToolSchema::compile(&json!({
        "type": "object",
        "properties": {"p": {"$ref": "https://attacker.example/s.json"}}
    }))
    .unwrap_err();
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn rejects_schema_with_file_ref() {
    assert!(
        ToolSchema::compile(&json!({
            "properties": {"p": {"$ref": "file:///etc/passwd"}}
        }))
        .is_err()
    );
    assert!(ToolSchema::compile(&json!({"$ref": "other.json"})).is_err());
}

#[test]
fn rejects_schema_with_unknown_meta_schema() {
    assert!(ToolSchema::compile(&json!({"$schema": "https://attacker.example/meta"})).is_err());
}

#[test]
fn rejects_invalid_schema() {
    assert!(ToolSchema::compile(&json!({"type": "strng"})).is_err());
    assert!(ToolSchema::compile(&json!({"properties": {"a": {"pattern": "("}}})).is_err());
}

#[test]
fn rejects_undeclared_arguments_when_declarations_cannot_be_followed() {
    let s = schema(json!({
        "$defs": {"A": {"$anchor": "args", "properties": {"a": {}}}},
        "$ref": "#args"
    }));
    assert!(matches!(
        s.validate(&json!({"a": 1}), UnknownArgs::Deny),
        Err(ArgProblem::Unanalyzable(_))
    ));
    assert_eq!(s.validate(&json!({}), UnknownArgs::Deny), Ok(()));
    assert_eq!(s.validate(&json!({"a": 1}), UnknownArgs::Allow), Ok(()));
}

#[test]
fn accepts_recursive_root_ref_without_looping() {
    let s = schema(json!({
        "properties": {"a": {}},
        "anyOf": [{"$ref": "#"}, true]
    }));
    assert_eq!(s.validate(&json!({"a": 1}), UnknownArgs::Deny), Ok(()));
}

#[test]
fn maps_problems_to_deny_reasons() {
    assert_eq!(
        ArgProblem::Unknown("x".into()).into_reason("t"),
        DenyReason::UnknownArgument {
            tool: "t".into(),
            arg: "x".into()
        }
    );
    assert_eq!(
        ArgProblem::Invalid("d".into()).into_reason("t"),
        DenyReason::SchemaInvalid {
            tool: "t".into(),
            detail: "d".into()
        }
    );
    assert_eq!(
        ArgProblem::Unanalyzable("d".into()).into_reason("t"),
        DenyReason::SchemaUnusable {
            tool: "t".into(),
            detail: "d".into()
        }
    );
}

#[test]
fn rejects_catastrophic_pattern_quickly() {
    // A backreference forces the backtracking engine; the budget turns the blow-up into a refusal.
    let s = schema(json!({
        "properties": {"q": {"type": "string", "pattern": "^(a+)+\\1$"}}
    }));
    let started = std::time::Instant::now();
    let q = format!("{}b", "a".repeat(40));
    assert!(matches!(
        s.validate(&json!({"q": q}), UnknownArgs::Allow),
        Err(ArgProblem::Invalid(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
