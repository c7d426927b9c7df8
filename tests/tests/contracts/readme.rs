//! The README tells the truth about the code it describes.

use agentbuild_tests::{functions_table, read};

#[test]
fn readme_function_table_matches_the_catalog() {
    let readme = read("README.md");
    let start = readme
        .find("<!-- functions:begin -->\n")
        .expect("table start marker")
        + 25;
    let end = readme
        .find("<!-- functions:end -->")
        .expect("table end marker");
    let table = functions_table();
    assert_eq!(
        &readme[start..end],
        table,
        "README table is stale; it should be:\n{table}"
    );
}

#[test]
fn readme_shows_the_two_commands_on_its_first_screen() {
    let readme = read("README.md");
    let first_screen: String = readme.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(first_screen.contains("make demo"));
    assert!(first_screen.contains("make test"));
}
