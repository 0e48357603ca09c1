//! The route table, `template.yaml` and `functions/src/bin/` agree: one function and one route per
//! operation, one binary per function. `UPDATE_TEMPLATE=1 cargo test template` rewrites the
//! generated part of the template.

use std::collections::BTreeSet;
use std::path::PathBuf;

use switchyard::api::ops::{OPS, sam_functions};

const BEGIN: &str = "  # BEGIN OPS\n";
const END: &str = "  # END OPS\n";
/// Binaries that are not API operations.
const OTHER_BINARIES: &[&str] = &["switchyard", "worker-deliver", "worker-sweep"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_template_declares_one_function_and_route_per_operation() {
    let path = root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("BEGIN OPS marker") + BEGIN.len();
    let end = text.find(END).expect("END OPS marker");
    let generated = sam_functions();
    if switchyard::config::env("UPDATE_TEMPLATE").as_deref() == Some("1") {
        std::fs::write(&path, format!("{}{generated}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    assert_eq!(&text[start..end], generated, "template.yaml is out of date: run UPDATE_TEMPLATE=1 cargo test template");
    assert_eq!(text.matches("Type: HttpApi\n").count(), OPS.len(), "no HTTP route outside the route table");
    for op in OPS {
        let route = format!("Path: {}\n            Method: {}\n", op.path, op.method);
        assert_eq!(text.matches(&route).count(), 1, "{} {}", op.method, op.path);
        assert_eq!(text.matches(&format!("  {}:\n", op.function())).count(), 1, "{}", op.function());
    }
    for bin in ["worker-deliver", "worker-sweep"] {
        assert!(text.contains(&format!("Binary: {bin}\n")), "{bin} has a function");
    }
}

#[test]
fn every_operation_has_its_binary_and_no_binary_lacks_an_operation() {
    let dir = root().join("functions/src/bin");
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut expected: BTreeSet<String> = OPS.iter().map(|op| op.binary()).collect();
    expected.extend(OTHER_BINARIES.iter().map(|b| (*b).to_owned()));
    assert_eq!(found, expected);
    for op in OPS {
        let source = std::fs::read_to_string(dir.join(format!("{}.rs", op.binary()))).unwrap();
        assert!(source.contains(&format!("serve_op(\"{}\")", op.id)), "{} serves {}", op.binary(), op.id);
        assert!(source.lines().count() <= 6, "{} stays a few lines", op.binary());
    }
}
