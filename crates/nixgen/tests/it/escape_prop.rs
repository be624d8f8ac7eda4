//! Property tests of the Nix escaper: any escaped string, placed in a Nix
//! string literal, parses and evaluates back to exactly the input.

use proptest::prelude::*;

use nixgen::escape::nix_string;

/// Strings rich in the characters that matter to Nix, plus arbitrary Unicode.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\\\\"${}'`#\n\r\t a\u{0}-\u{1f}\u{7f}\u{85}\u{2028}é😀]{0,40}",
        proptest::collection::vec(
            prop_oneof![
                Just("${"),
                Just("$"),
                Just("\\"),
                Just("\""),
                Just("''"),
                Just("{"),
                Just("x")
            ],
            0..20
        )
        .prop_map(|v| v.concat()),
    ]
}

/// Nix strings cannot hold NUL; the escaper substitutes U+FFFD.
fn expected(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn rnix_value(src: &str) -> Result<String, String> {
    let parsed = rnix::Root::parse(src);
    if !parsed.errors().is_empty() {
        return Err(format!("{:?}", parsed.errors()));
    }
    let Some(rnix::ast::Expr::Str(s)) = parsed.tree().expr() else {
        return Err("not a string".into());
    };
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            rnix::ast::InterpolPart::Literal(l) => out.push_str(&l),
            rnix::ast::InterpolPart::Interpolation(_) => return Err("interpolation".into()),
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn escaped_strings_parse_back_with_rnix(s in nasty()) {
        let src = format!("\"{}\"", nix_string(&s));
        prop_assert_eq!(rnix_value(&src), Ok(expected(&s)), "source: {:?}", src);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn escaped_strings_evaluate_back_with_nix(v in proptest::collection::vec(nasty(), 1..24)) {
        if !crate::has_nix() {
            return Ok(());
        }
        let list: String = v.iter().map(|s| format!("  \"{}\"\n", nix_string(s))).collect();
        let got = crate::nix_eval(&format!("[\n{list}]"));
        let want: Vec<String> = v.iter().map(|s| expected(s)).collect();
        prop_assert_eq!(got, serde_json::json!(want));
    }
}
