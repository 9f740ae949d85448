//! The OpenAPI document on its own: it parses, every reference resolves, every route has a
//! summary and its path parameters declared, and it lists exactly the router's routes.

use std::collections::BTreeSet;

fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_whole_and_lists_the_router_s_routes() {
    let text = visage_server::openapi::document();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut rs = Vec::new();
    refs(&doc, &mut rs);
    assert!(!rs.is_empty());
    for r in rs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "dangling reference {r}");
    }
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path} has no summary");
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|a| a.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            assert_eq!(declared, in_path, "{method} {path}: path parameters");
            if path.starts_with("/v1/") {
                assert!(op["security"].is_array(), "{method} {path} needs a key");
                assert!(op["responses"]["401"].is_object(), "{method} {path}: 401 documented");
            }
        }
    }
    let served: BTreeSet<(String, String)> =
        visage_server::served_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served, "the document and the router disagree");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/openapi.json");
    std::fs::write(out, text).unwrap();
}
