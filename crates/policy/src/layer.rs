//! Layers: partial settings that are stacked to build one policy.
//!
//! Each source of settings (the embedded default, a profile's presets, the file's globals, a
//! `[servers.NAME]` table) becomes a [`Layer`] in which every key is optional: `None` means "not set here,
//! keep what the layers below said". Applying layers in order is the whole precedence story, so it lives in
//! one function, [`Settings::apply`].

use std::time::Duration;

use crate::diag::Location;
use crate::model::{
    ArgRule, ArgRules, Glob, HostRule, Limits, NetRules, PinMode, Profile, Rate, ToolRules,
    UnknownArgs,
};
use crate::values::PathSpec;

/// Where a value was written, kept so that problems found while resolving (`~` without HOME) still point
/// at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    pub(crate) origin: String,
    pub(crate) location: Option<Location>,
    pub(crate) key: String,
}

/// A path as written, with its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SitedPath {
    pub(crate) spec: PathSpec,
    /// What the user wrote (for messages).
    pub(crate) raw: String,
    pub(crate) site: Site,
    /// A `broad-root` warning was already given for this entry when the file was parsed.
    pub(crate) warned_broad: bool,
}

/// Partial settings; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    pub(crate) tools_allow: Option<Vec<Glob>>,
    pub(crate) tools_deny: Option<Vec<Glob>>,
    pub(crate) fs_read: Option<Vec<SitedPath>>,
    pub(crate) fs_write: Option<Vec<SitedPath>>,
    pub(crate) net_allow: Option<Vec<HostRule>>,
    pub(crate) args_schema: Option<bool>,
    pub(crate) args_unknown: Option<UnknownArgs>,
    pub(crate) args_auto_detect: Option<bool>,
    pub(crate) args_url_schemes: Option<Vec<String>>,
    /// Appended, never replaced: every rule only adds checks, so a server table cannot drop a global one.
    pub(crate) args_rules: Vec<ArgRule>,
    pub(crate) pin_mode: Option<PinMode>,
    pub(crate) pin_file: Option<SitedPath>,
    pub(crate) max_message_bytes: Option<usize>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) max_concurrent_calls: Option<usize>,
    /// `Some(None)` = explicitly no rate limit (`rate = "off"`).
    pub(crate) rate: Option<Option<Rate>>,
    pub(crate) audit_enabled: Option<bool>,
    pub(crate) audit_path: Option<SitedPath>,
    pub(crate) audit_durable: Option<bool>,
}

impl Layer {
    /// The presets a profile stacks on top of the embedded default. `dev` is the default itself.
    pub(crate) fn preset(profile: Profile) -> Layer {
        match profile {
            Profile::Dev => Layer::default(),
            Profile::Prod => Layer {
                args_unknown: Some(UnknownArgs::Deny),
                pin_mode: Some(PinMode::Require),
                audit_durable: Some(true),
                ..Layer::default()
            },
        }
    }
}

/// Complete settings with paths not yet expanded (that needs HOME and the cwd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) tools: ToolRules,
    pub(crate) fs_read: Vec<SitedPath>,
    pub(crate) fs_write: Vec<SitedPath>,
    pub(crate) net: NetRules,
    pub(crate) args: ArgRules,
    pub(crate) pin_mode: PinMode,
    pub(crate) pin_file: Option<SitedPath>,
    pub(crate) limits: Limits,
    pub(crate) audit_enabled: bool,
    pub(crate) audit_path: Option<SitedPath>,
    pub(crate) audit_durable: bool,
}

impl Settings {
    /// The floor under the embedded default: nothing allowed, everything checked. The embedded default
    /// sets every key, so these values only matter if it ever stops doing so (a test guards that).
    pub(crate) fn locked_down() -> Settings {
        Settings {
            tools: ToolRules {
                allow: Vec::new(),
                deny: Vec::new(),
            },
            fs_read: Vec::new(),
            fs_write: Vec::new(),
            net: NetRules::default(),
            args: ArgRules {
                schema: true,
                unknown: UnknownArgs::Deny,
                auto_detect: true,
                url_schemes: vec!["https".into()],
                rules: Vec::new(),
            },
            pin_mode: PinMode::Require,
            pin_file: None,
            limits: Limits {
                max_message_bytes: 1 << 20,
                call_timeout: Duration::from_secs(30),
                max_concurrent_calls: 1,
                rate: None,
            },
            audit_enabled: true,
            audit_path: None,
            audit_durable: true,
        }
    }

    /// Stacks `layer` on top: every key the layer sets replaces the current value, except argument rules,
    /// which are appended.
    pub(crate) fn apply(&mut self, layer: &Layer) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut self.tools.allow, &layer.tools_allow);
        set(&mut self.tools.deny, &layer.tools_deny);
        set(&mut self.fs_read, &layer.fs_read);
        set(&mut self.fs_write, &layer.fs_write);
        set(&mut self.net.allow, &layer.net_allow);
        set(&mut self.args.schema, &layer.args_schema);
        set(&mut self.args.unknown, &layer.args_unknown);
        set(&mut self.args.auto_detect, &layer.args_auto_detect);
        set(&mut self.args.url_schemes, &layer.args_url_schemes);
        self.args.rules.extend(layer.args_rules.iter().cloned());
        set(&mut self.pin_mode, &layer.pin_mode);
        if layer.pin_file.is_some() {
            self.pin_file = layer.pin_file.clone();
        }
        set(&mut self.limits.max_message_bytes, &layer.max_message_bytes);
        set(&mut self.limits.call_timeout, &layer.call_timeout);
        set(
            &mut self.limits.max_concurrent_calls,
            &layer.max_concurrent_calls,
        );
        set(&mut self.limits.rate, &layer.rate);
        set(&mut self.audit_enabled, &layer.audit_enabled);
        if layer.audit_path.is_some() {
            self.audit_path = layer.audit_path.clone();
        }
        set(&mut self.audit_durable, &layer.audit_durable);
    }
}
