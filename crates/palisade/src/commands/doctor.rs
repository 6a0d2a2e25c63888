//! `palisade doctor`: which sandbox tier this machine gives servers, and why.
//!
//! Exit status: 0 for tier 1 (full sandbox), 1 when degraded (tier 2) or unavailable (tier 3).

use anyhow::Result;

use crate::ExitStatus;
use crate::cli::Format;

#[cfg(target_os = "linux")]
pub(crate) fn doctor(format: Format) -> Result<ExitStatus> {
    use palisade_sandbox::linux::probe::{Tier, probe};
    let p = probe();
    match format {
        Format::Text => print!("{}", p.render()),
        Format::Json => {
            let v = serde_json::json!({
                "tier": p.tier.number(),
                "degraded": p.tier != Tier::One,
                "user_namespaces": {
                    "ok": p.userns.is_ok(),
                    "error": p.userns.as_ref().err(),
                    "unprivileged_userns_clone": p.facts.unprivileged_userns_clone,
                    "max_user_namespaces": p.facts.max_user_namespaces,
                    "apparmor_restrict_unprivileged_userns": p.facts.apparmor_restrict_userns,
                },
                "landlock": {
                    "abi": p.landlock_abi,
                    "error": p.facts.landlock.as_ref().err(),
                },
                "seccomp": p.seccomp,
                "already_filtered": p.facts.already_filtered,
                "root": p.facts.root,
                "reasons": p.reasons,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(if p.tier == Tier::One {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn doctor(format: Format) -> Result<ExitStatus> {
    let why = "no OS sandbox on this system yet (Linux only): servers run as plain child processes";
    match format {
        Format::Text => println!("sandbox tier:    3 (NO SANDBOX)\nwhy:\n  - {why}"),
        Format::Json => println!(
            "{}",
            serde_json::json!({"tier": 3, "degraded": true, "reasons": [why]})
        ),
    }
    Ok(ExitStatus::Failure)
}
