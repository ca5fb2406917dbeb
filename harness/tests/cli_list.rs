//! `heaplab list`: the specs a build knows, validation of bad ones.

use assert_cmd::Command;
use predicates::prelude::*;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

#[test]
fn list_shows_all_twelve_freelist_configurations() {
    let output = heaplab().args(["list", "--names", "freelist:*"]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(output).unwrap();
    let specs: Vec<&str> = text.lines().collect();
    assert_eq!(specs.len(), 12, "{text}");
    for fit in ["first", "next", "best", "worst"] {
        for order in ["lifo", "fifo", "address"] {
            assert!(specs.contains(&format!("freelist:fit={fit},order={order}").as_str()), "{fit}/{order} missing");
        }
    }
}

#[test]
fn list_describes_each_configuration() {
    heaplab()
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::is_match("freelist:fit=best,order=address +best fit, address-ordered list").unwrap())
        .stdout(predicate::str::contains("freelist: one free list with boundary tags"));
}

#[test]
fn a_spec_is_validated_and_printed_canonically() {
    heaplab()
        .args(["list", "--names", "freelist:order=lifo"])
        .assert()
        .success()
        .stdout("freelist:fit=first,order=lifo\n");
}

#[test]
fn a_bad_spec_exits_2_with_the_valid_ones_and_no_panic() {
    for (spec, message) in [
        ("freelist:fit=good", "`fit` must be one of first, next, best, worst, found `good`"),
        ("budy", "unknown allocator family `budy` (did you mean `buddy`?)"),
        ("buddy:min=17", "hint: `heaplab list 'buddy:*'` shows its configurations"),
        ("freelist:colour=red", "unknown parameter `colour` for `freelist`"),
        ("nosuch", "unknown allocator family `nosuch`"),
        ("freelist:fit", "expected `key=value`, found `fit`"),
        ("nosuch:*", "matches no listed configuration"),
    ] {
        heaplab()
            .args(["list", spec])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(message))
            // One line of error and at most one of hint, not every valid spec.
            .stderr(predicate::function(|text: &str| text.lines().count() <= 2))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn help_explains_each_command() {
    heaplab().arg("--help").assert().success().stdout(predicate::str::contains("list"));
    heaplab().args(["list", "--help"]).assert().success().stdout(predicate::str::contains("pattern"));
}

#[test]
fn an_unknown_command_exits_2() {
    heaplab().arg("frobnicate").assert().code(2).stderr(predicate::str::contains("unrecognized subcommand"));
}

#[test]
fn completions_and_the_man_page_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = heaplab().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let text = String::from_utf8(output.stdout).unwrap();
        for subcommand in ["run", "compare", "merge", "report", "trace"] {
            assert!(text.contains(subcommand), "{shell} completions lack `{subcommand}`");
        }
    }
    let output = heaplab().arg("man").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(".TH heaplab 1") && text.contains("merge"), "{}", &text[..200.min(text.len())]);
    heaplab().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn a_mistyped_subcommand_gets_the_nearest_one_and_the_one_error_prefix() {
    for (typed, nearest) in [("rn", "run"), ("repot", "report"), ("lst", "list")] {
        heaplab()
            .arg(typed)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("heaplab: error: unrecognized subcommand"))
            .stderr(
                predicate::str::contains(format!("'{nearest}'")).or(predicate::str::contains(format!("`{nearest}`"))),
            );
    }
    // Far from every subcommand: no guess.
    heaplab()
        .arg("xyzzy")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean").not().and(predicate::str::contains("similar").not()));
    // Clap's own errors carry heaplab's prefix too.
    heaplab()
        .args(["run", "--bogus"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("heaplab: error: unexpected argument '--bogus'"));
}
