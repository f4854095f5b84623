//! The list the linker lays the binary out by (`crates/app/build.rs`), as
//! `scripts/callgrind-compare.sh --symbol-order` writes it: symbol names the linker can match,
//! one per line, each once.

use std::collections::HashSet;

#[test]
fn the_symbol_order_lists_each_function_once_by_its_linker_name() {
    let list = include_str!("../../symbol-order.txt");
    let names: Vec<&str> = list.lines().collect();
    assert!(
        names.len() > 1_000,
        "{} functions: the list is not a run of the server",
        names.len()
    );
    for name in &names {
        // Mangled Rust names (legacy `_ZN`, v0 `_R`) have no spaces, no callgrind cycle
        // suffix (`'2`) and no demangled path (`::`); the linker would match none of those.
        assert!(
            (name.starts_with("_ZN") || name.starts_with("_R"))
                && !name.contains(char::is_whitespace)
                && !name.contains('\'')
                && !name.contains("::"),
            "not a symbol name the linker matches: {name:?}"
        );
    }
    let unique: HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a function is listed twice");
    // The server's request path is in it, not only its start-up.
    for hot in ["verify_webhook", "apply_facts", "purchase_status"] {
        assert!(
            names.iter().any(|name| name.contains(hot)),
            "{hot} never ran in the run the list was made from"
        );
    }
}
