//! Names one keystroke away from a well-known MCP server: the shape of most registry typosquats (a
//! dropped, doubled, swapped or replaced character, `0` for `o`), and of scope impersonation
//! (`@evil/server-filesystem` for `@modelcontextprotocol/server-filesystem`).
//!
//! The list is data (`data/mcp-servers.tsv`, one id per name). Distance is Damerau-Levenshtein (optimal
//! string alignment) on normalized names (PyPI: PEP 503). A distance of 1 flags; 2 flags only for long
//! names (≥ 12 characters) and never when one name merely extends the other (`mcp-server-gitea` is a
//! different server, not a typo of `mcp-server-git`).

use crate::spec::Ecosystem;

/// One well-known name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Stable id (`mcp016`).
    pub id: String,
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// The name.
    pub name: String,
}

const DATA: &str = include_str!("../data/mcp-servers.tsv");

/// The built-in list.
pub fn known() -> Vec<Known> {
    DATA.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            let id = f.next()?.to_owned();
            let ecosystem = match f.next()? {
                "npm" => Ecosystem::Npm,
                "PyPI" => Ecosystem::PyPI,
                _ => return None,
            };
            Some(Known {
                id,
                ecosystem,
                name: f.next()?.to_owned(),
            })
        })
        .collect()
}

/// A suspicious resemblance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookalike {
    /// The well-known package it resembles.
    pub known: Known,
    /// Edit distance (0 for a same-name package under another scope).
    pub distance: usize,
    /// What kind of resemblance.
    pub kind: &'static str,
}

fn split_scope(n: &str) -> (Option<&str>, &str) {
    match n.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, base)) => (Some(scope), base),
        None => (None, n),
    }
}

/// Well-known names `name` resembles without being one of them.
pub fn lookalikes(ecosystem: Ecosystem, name: &str) -> Vec<Lookalike> {
    let list = known();
    let me = ecosystem.normalize(name);
    if list
        .iter()
        .any(|k| k.ecosystem == ecosystem && ecosystem.normalize(&k.name) == me)
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    for k in list.into_iter().filter(|k| k.ecosystem == ecosystem) {
        let theirs = ecosystem.normalize(&k.name);
        let d = strsim::osa_distance(&me, &theirs);
        let extends = me.starts_with(&theirs) || theirs.starts_with(&me);
        let long = me.chars().count().min(theirs.chars().count()) >= 12;
        if d == 1 || (d == 2 && long && !extends) {
            out.push(Lookalike {
                known: k,
                distance: d,
                kind: "name",
            });
            continue;
        }
        let (my_scope, my_base) = split_scope(&me);
        let (their_scope, their_base) = split_scope(&theirs);
        if their_scope.is_some()
            && my_scope != their_scope
            && my_base == their_base
            && my_base.len() >= 6
        {
            out.push(Lookalike {
                known: k,
                distance: 0,
                kind: "scope",
            });
        }
    }
    out.sort_by_key(|l| l.distance);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_unique_ids() {
        let k = known();
        assert!(k.len() >= 40, "{}", k.len());
        let mut ids: Vec<&str> = k.iter().map(|x| x.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), k.len());
    }

    #[test]
    fn flags_one_keystroke_lookalikes_and_scope_impersonation() {
        let hit = |e, n: &str| lookalikes(e, n).first().map(|l| l.known.name.clone());
        assert_eq!(hit(Ecosystem::Npm, "mcp-remot"), Some("mcp-remote".into()));
        assert_eq!(hit(Ecosystem::Npm, "mcp-rmeote"), Some("mcp-remote".into()));
        assert_eq!(
            hit(Ecosystem::Npm, "@modelcontextprotocol/server-filesystern"),
            Some("@modelcontextprotocol/server-filesystem".into())
        );
        assert_eq!(
            hit(Ecosystem::Npm, "@mcp-tools/server-filesystem"),
            Some("@modelcontextprotocol/server-filesystem".into())
        );
        assert_eq!(
            hit(Ecosystem::PyPI, "mcp-server-fecth"),
            Some("mcp-server-fetch".into())
        );
        assert_eq!(
            hit(Ecosystem::PyPI, "mcp_server_fech"),
            Some("mcp-server-fetch".into())
        );
    }

    #[test]
    fn the_real_names_and_distinct_servers_do_not_flag() {
        for (e, n) in [
            (Ecosystem::Npm, "mcp-remote"),
            (Ecosystem::Npm, "@modelcontextprotocol/server-filesystem"),
            (Ecosystem::PyPI, "MCP_Server_Fetch"),
            (Ecosystem::PyPI, "mcp-server-gitea"),
            (Ecosystem::Npm, "express"),
            (Ecosystem::PyPI, "mcp-server-time"),
            // Different ecosystem: not a squat of the npm name.
            (Ecosystem::PyPI, "mcp-remote"),
        ] {
            assert!(lookalikes(e, n).is_empty(), "{n}: {:?}", lookalikes(e, n));
        }
    }
}
