//! PEP 508 environment markers, evaluated for the Linux platforms the tree
//! supports. Only what a requirements.txt line needs to be decided at update
//! time is known: the platform and the interpreter's implementation. A marker
//! on anything else (`python_version`, say) cannot be decided here, and the
//! plugin is then not provisioned from nixpkgs.

/// The environment of one platform, as Python reports it there.
#[derive(Debug, Clone, Copy)]
pub struct Environment {
    /// `platform.machine()`: `x86_64`, `aarch64`.
    pub machine: &'static str,
}

impl Environment {
    fn value(self, variable: &str) -> Option<&'static str> {
        Some(match variable {
            "sys_platform" => "linux",
            "platform_system" => "Linux",
            "os_name" => "posix",
            "platform_machine" => self.machine,
            "platform_python_implementation" => "CPython",
            "implementation_name" => "cpython",
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MarkerError {
    #[error("marker variable {0} cannot be decided at update time")]
    Undecidable(String),
    #[error("marker is not understood near {0:?}")]
    Syntax(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Str(String),
    Word(String),
    Op(&'static str),
    Open,
    Close,
}

const OPERATORS: [&str; 8] = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"];

fn tokens(marker: &str) -> Result<Vec<Token>, MarkerError> {
    let mut out = Vec::new();
    let mut rest = marker.trim_start();
    while let Some(c) = rest.chars().next() {
        let (token, len) = if c == '\'' || c == '"' {
            let end = rest[1..]
                .find(c)
                .ok_or_else(|| MarkerError::Syntax(rest.to_owned()))?;
            (Token::Str(rest[1..=end].to_owned()), end + 2)
        } else if c == '(' {
            (Token::Open, 1)
        } else if c == ')' {
            (Token::Close, 1)
        } else if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            (Token::Op(op), op.len())
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            (Token::Word(rest[..len].to_owned()), len)
        } else {
            return Err(MarkerError::Syntax(rest.to_owned()));
        };
        out.push(token);
        rest = rest[len..].trim_start();
    }
    Ok(out)
}

/// Evaluates `marker` (the text after `;`) for `env`.
pub fn evaluate(marker: &str, env: Environment) -> Result<bool, MarkerError> {
    let tokens = tokens(marker)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        env,
    };
    let value = p.or()?;
    match p.tokens.get(p.at) {
        None => Ok(value),
        Some(t) => Err(MarkerError::Syntax(format!("{t:?}"))),
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    env: Environment,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(x)) if x == w)
    }

    // Both sides are evaluated, so an undecidable clause is never hidden by
    // a short circuit that would depend on the platform.
    fn or(&mut self) -> Result<bool, MarkerError> {
        let mut value = self.and()?;
        while self.word("or") {
            self.at += 1;
            let right = self.and()?;
            value = value || right;
        }
        Ok(value)
    }

    fn and(&mut self) -> Result<bool, MarkerError> {
        let mut value = self.atom()?;
        while self.word("and") {
            self.at += 1;
            let right = self.atom()?;
            value = value && right;
        }
        Ok(value)
    }

    fn atom(&mut self) -> Result<bool, MarkerError> {
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let value = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(value),
                other => Err(MarkerError::Syntax(format!("{other:?}"))),
            };
        }
        let left = self.operand()?;
        let op = self.operator()?;
        let right = self.operand()?;
        compare(&left, op, &right)
    }

    fn operand(&mut self) -> Result<String, MarkerError> {
        let env = self.env;
        match self.next() {
            Some(Token::Str(s)) => Ok(s.clone()),
            Some(Token::Word(w)) => env
                .value(w)
                .map(str::to_owned)
                .ok_or_else(|| MarkerError::Undecidable(w.clone())),
            other => Err(MarkerError::Syntax(format!("{other:?}"))),
        }
    }

    fn operator(&mut self) -> Result<&'static str, MarkerError> {
        match self.next() {
            Some(Token::Op(op)) => Ok(op),
            Some(Token::Word(w)) if w == "in" => Ok("in"),
            Some(Token::Word(w)) if w == "not" => match self.next() {
                Some(Token::Word(w)) if w == "in" => Ok("not in"),
                other => Err(MarkerError::Syntax(format!("not {other:?}"))),
            },
            other => Err(MarkerError::Syntax(format!("{other:?}"))),
        }
    }
}

/// The platform variables are strings, compared as strings (PEP 508 falls
/// back to that when a side is not a version).
fn compare(left: &str, op: &str, right: &str) -> Result<bool, MarkerError> {
    Ok(match op {
        "==" | "===" => left == right,
        "!=" => left != right,
        "in" => right.contains(left),
        "not in" => !right.contains(left),
        _ => return Err(MarkerError::Syntax(format!("{left:?} {op} {right:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: Environment = Environment { machine: "x86_64" };
    const ARM: Environment = Environment { machine: "aarch64" };

    #[test]
    fn onnx_markers_pick_one_package_per_platform() {
        let gpu = "'darwin' not in sys_platform and platform_machine != 'aarch64'";
        let cpu = "'darwin' in sys_platform or platform_machine == 'aarch64'";
        assert_eq!(evaluate(gpu, X86), Ok(true));
        assert_eq!(evaluate(gpu, ARM), Ok(false));
        assert_eq!(evaluate(cpu, X86), Ok(false));
        assert_eq!(evaluate(cpu, ARM), Ok(true));
    }

    #[test]
    fn parentheses_quotes_and_precedence() {
        let m =
            r#"sys_platform == "darwin" or (platform_system == 'Linux' and os_name == "posix")"#;
        assert_eq!(evaluate(m, X86), Ok(true));
        // `and` binds tighter than `or`.
        let m = "sys_platform == 'linux' or sys_platform == 'win32' and os_name == 'nt'";
        assert_eq!(evaluate(m, ARM), Ok(true));
        assert_eq!(evaluate("sys_platform == 'win32'", X86), Ok(false));
    }

    #[test]
    fn undecidable_and_malformed_markers_are_errors() {
        assert_eq!(
            evaluate("sys_platform == 'darwin' and python_version < '3.10'", X86),
            Err(MarkerError::Undecidable("python_version".into()))
        );
        assert!(matches!(
            evaluate("sys_platform = 'linux'", X86),
            Err(MarkerError::Syntax(_))
        ));
        assert!(matches!(
            evaluate("(sys_platform == 'linux'", X86),
            Err(MarkerError::Syntax(_))
        ));
        assert!(matches!(
            evaluate("platform_machine < 'x'", X86),
            Err(MarkerError::Syntax(_))
        ));
        assert!(matches!(
            evaluate("sys_platform == 'linux", X86),
            Err(MarkerError::Syntax(_))
        ));
    }
}
