//! Text that came from the service or from logs, made safe to print on a terminal.
//!
//! Build records, API errors, live status and CodeBuild log lines carry text other people
//! control (an agent's build output, an upload's name, a proxy's error page). A terminal obeys
//! control sequences in what it prints: colours are the harmless end; cursor movement and `\r`
//! can overwrite what the CLI printed, OSC 52 writes the clipboard, OSC 8 disguises links, and
//! some terminals answer queries by typing into the shell. Every human-readable print path
//! goes through [`sanitize`]; machine JSON goes through [`json_line`].
//!
//! Leaf module: it imports nothing from the rest of the crate.

use std::borrow::Cow;

/// `text` without terminal control sequences and control characters, `\n` and `\t` kept.
///
/// Escape sequences (CSI, OSC with its payload, DCS, charset designations, ...) are removed by
/// `console::strip_ansi_codes`, after each 8-bit C1 control (`\u{9b}` CSI, `\u{9d}` OSC, ...)
/// is first spelled as its 7-bit `ESC` form so that its payload goes too. Then every control
/// character left (C0 but `\n` and `\t`, DEL, C1 — so a lone or malformed `ESC`, BEL, `\r`,
/// backspace) is dropped: a sequence the parser does not know is left as inert text.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut seven_bit = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if let '\u{80}'..='\u{9f}' = c {
            seven_bit.push('\u{1b}');
            seven_bit.push(char::from(c as u8 - 0x40));
        } else {
            seven_bit.push(c);
        }
    }
    let stripped = console::strip_ansi_codes(&seven_bit);
    Cow::Owned(stripped.chars().filter(|c| !is_unsafe(*c)).collect())
}

/// [`sanitize`], on one line: line breaks and tabs become spaces, runs of them one space, and
/// the ends are trimmed (for the spinner and one-line summaries).
pub fn one_line(text: &str) -> String {
    sanitize(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `value` as one line of JSON that is as safe on a terminal as it is valid. serde_json escapes
/// U+0000..U+001F inside strings, but writes DEL and the C1 controls (U+0080..U+009F, among
/// them the 8-bit CSI `\u{9b}`) as they are; here those are escaped too (`\u009b`). The text
/// still parses to the same value: outside strings JSON is plain ASCII, so every such
/// character is inside a string, where the escape means the character itself.
pub fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if !text.chars().any(|c| c.is_control()) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `text`, sanitized, on one line (for errors quoting an answer).
pub fn clip(text: &str, max: usize) -> String {
    let one_line = one_line(text);
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Each hostile string, and what must be printed of it.
    pub(crate) const HOSTILE: &[(&str, &str)] = &[
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[1;1Hcleared", "cleared"),
        ("up\x1b[1A\x1b[2Kgone", "upgone"),
        ("\x1b[?25lhidden cursor", "hidden cursor"),
        ("\x1b]52;c;ZWNobyBwd25lZA==\x07copied", "copied"),
        ("\x1b]52;c;ZWNobyBwd25lZA==\x1b\\copied", "copied"),
        (
            "\x1b]8;;https://evil.example/\x1b\\https://aws.amazon.com\x1b]8;;\x1b\\",
            "https://aws.amazon.com",
        ),
        ("\x1b]0;window title\x07text", "text"),
        ("\x1bP+q544e\x1b\\after dcs", "after dcs"),
        ("ring\x07\x07", "ring"),
        ("SUCCEEDED\rFAILED", "SUCCEEDEDFAILED"),
        ("abc\x08\x08\x08xyz", "abcxyz"),
        ("\u{9b}31mc1 red\u{9b}0m", "c1 red"),
        ("\u{9d}52;c;ZWNobw==\u{9c}c1 osc", "c1 osc"),
        ("\u{90}q\u{9c}c1 dcs", "c1 dcs"),
        ("lone \x1b escape", "lone  escape"),
        ("\x1b(0charset\x1b(B", "charset"),
        ("nul\0del\x7f", "nuldel"),
        ("keeps\ttabs\nand newlines", "keeps\ttabs\nand newlines"),
        ("plain ünïcödé → ok", "plain ünïcödé → ok"),
    ];

    /// No character a terminal would act on, but `\n` and `\t`.
    pub(crate) fn assert_inert(text: &str) {
        assert!(
            !text.chars().any(is_unsafe),
            "control characters left in {text:?}"
        );
    }

    #[test]
    fn strips_every_hostile_sequence_and_keeps_the_text() {
        for (hostile, want) in HOSTILE {
            let got = sanitize(hostile);
            assert_eq!(got, *want, "{hostile:?}");
            assert_inert(&got);
        }
    }

    #[test]
    fn clean_text_is_borrowed_as_is() {
        assert!(matches!(
            sanitize("build cli-1 SUCCEEDED\n"),
            Cow::Borrowed("build cli-1 SUCCEEDED\n")
        ));
    }

    #[test]
    fn an_unterminated_sequence_leaves_nothing_active() {
        for hostile in ["\x1b]52;c;ZWNobw==", "\x1b[", "\x1bP", "\u{9b}", "x\x1b"] {
            assert_inert(&sanitize(hostile));
        }
    }

    #[test]
    fn one_line_folds_line_breaks_and_tabs() {
        assert_eq!(one_line(" BUILD\r\n\tphase \x1b[5m!\n"), "BUILD phase !");
    }

    #[test]
    fn clips_to_one_line_of_at_most_max_characters() {
        assert_eq!(clip("a\n b  c", 10), "a b c");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("\x1b[31mred\x1b[0m", 10), "red");
    }

    #[test]
    fn json_lines_stay_valid_json_of_the_same_value_and_carry_no_raw_control() {
        for (hostile, _) in HOSTILE {
            let value = json!({"record": {"error": {"message": hostile}}, hostile.to_string(): 1});
            let line = json_line(&value);
            assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
            assert_eq!(line.lines().count(), 1);
            let back: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(back, value, "{line}");
        }
        // Nothing to escape: serde_json's own text.
        let plain = json!({"status": "SUCCEEDED", "n": [1, 2]});
        assert_eq!(json_line(&plain), plain.to_string());
        assert!(json_line(&json!("\u{9b}")).contains("\\u009b"));
    }
}
