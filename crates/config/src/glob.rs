/// Glob with `*` (any run, possibly empty) and `?` (one char) over a whole module or parameter
/// name. Iterative, linear-time backtracking.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "model.layers.*.mlp.*",
            "model.layers.11.mlp.down_proj"
        ));
        assert!(!glob_match(
            "model.layers.*.mlp.*",
            "model.layers.11.self_attn.q_proj"
        ));
        assert!(glob_match("*q_proj", "model.layers.0.self_attn.q_proj"));
        assert!(glob_match("model.layers.?.*", "model.layers.3.mlp.up_proj"));
        assert!(!glob_match(
            "model.layers.?.*",
            "model.layers.13.mlp.up_proj"
        ));
        assert!(glob_match("lm_head", "lm_head"));
        assert!(!glob_match("lm_head", "lm_head2"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
    }
}
