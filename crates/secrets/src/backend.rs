//! Which store holds secrets on this machine, and why.
//!
//! The choice is made at run time, per process, by [`select`] (pure, unit-tested) from facts gathered by
//! [`Facts::gather`]:
//!
//! | platform | auto choice |
//! |---|---|
//! | macOS, Windows | the OS keychain (Keychain / Credential Manager) |
//! | Linux/BSD with a D-Bus session bus that answers as `org.freedesktop.secrets` | the OS keychain (Secret Service: GNOME Keyring, KWallet, KeePassXC) |
//! | Linux/BSD otherwise (SSH sessions, servers, containers, CI) | the 0600 file `$XDG_DATA_HOME/palisade/secrets.json`, with a warning on every write |
//!
//! Kernel keyutils is never chosen automatically: its values live in kernel memory and are gone after a
//! reboot, which would silently break every `keychain:` reference `palisade wrap` wrote. It is there for
//! people who want exactly that (`PALISADE_SECRET_BACKEND=keyutils`). `PALISADE_SECRET_BACKEND` (or
//! `--backend`) forces any backend; a forced backend that cannot work is an error, never a fallback.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Error, Result, SecretStore};

/// The environment variable that forces a backend: `auto` (default), `keychain`, `keyutils`, `file`.
pub const BACKEND_ENV: &str = "PALISADE_SECRET_BACKEND";

/// The keychain service name palisade's entries are filed under.
pub const KEYCHAIN_SERVICE: &str = "palisade";

/// A secret store implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The OS keychain through the `keyring` crate.
    Keychain,
    /// The Linux kernel's key retention service (the user keyring): memory only.
    Keyutils,
    /// A JSON file readable only by the user (0600), not encrypted.
    File,
}

impl Backend {
    /// Every backend, in the order `list` and docs show them.
    pub const ALL: [Backend; 3] = [Backend::Keychain, Backend::Keyutils, Backend::File];

    /// The stable id (`keychain`, `keyutils`, `file`), as `PALISADE_SECRET_BACKEND` takes it.
    pub fn id(self) -> &'static str {
        match self {
            Backend::Keychain => "keychain",
            Backend::Keyutils => "keyutils",
            Backend::File => "file",
        }
    }

    /// Parses an id.
    pub fn from_id(id: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.id() == id)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// Pick per platform ([`select`]).
    #[default]
    Auto,
    /// Use this one or fail.
    Forced(Backend),
}

impl BackendChoice {
    /// Parses `auto` or a backend id (empty means `auto`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "" | "auto" => Ok(BackendChoice::Auto),
            other => Backend::from_id(other)
                .map(BackendChoice::Forced)
                .ok_or_else(|| Error::UnknownBackend(other.to_owned())),
        }
    }

    /// From `PALISADE_SECRET_BACKEND` (unset means `auto`).
    pub fn from_env() -> Result<Self> {
        match std::env::var(BACKEND_ENV) {
            Ok(v) => BackendChoice::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(BackendChoice::Auto),
            Err(std::env::VarError::NotUnicode(v)) => {
                Err(Error::UnknownBackend(v.to_string_lossy().into_owned()))
            }
        }
    }
}

/// The platform family, as far as the choice cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// macOS: the login Keychain is always there.
    MacOs,
    /// Windows: Credential Manager is always there.
    Windows,
    /// Linux and the BSDs: the Secret Service only exists in a desktop session.
    FreeDesktop,
    /// Anything else: no keychain support compiled in.
    Other,
}

impl Platform {
    /// This build's platform.
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(windows) {
            Platform::Windows
        } else if cfg!(unix) {
            Platform::FreeDesktop
        } else {
            Platform::Other
        }
    }
}

/// What [`select`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The platform.
    pub platform: Platform,
    /// Where the D-Bus session bus is, if anywhere (`DBUS_SESSION_BUS_ADDRESS` or
    /// `$XDG_RUNTIME_DIR/bus`). Only meaningful on [`Platform::FreeDesktop`].
    pub session_bus: Option<String>,
    /// The Secret Service probe; `None` if not probed (no bus).
    pub secret_service: Option<Probe>,
}

/// What the Secret Service probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered (the probe entry exists or not).
    Answered,
    /// It exists but is locked or refused access (the reason): still the keychain, whose errors then say
    /// "unlock it"; falling back would make the store depend on the lock state.
    Locked(String),
    /// Nothing provides it on this bus (the reason).
    Absent(String),
}

impl Facts {
    /// Looks at the environment, and probes the Secret Service when there is a bus. The probe is one
    /// D-Bus round trip (a search for an item that does not exist); it runs only for [`BackendChoice::Auto`].
    pub fn gather() -> Self {
        let platform = Platform::current();
        let session_bus = if platform == Platform::FreeDesktop {
            session_bus()
        } else {
            None
        };
        let secret_service = session_bus.as_ref().map(|_| crate::keychain::probe());
        Facts {
            platform,
            session_bus,
            secret_service,
        }
    }
}

fn session_bus() -> Option<String> {
    if let Some(a) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.is_empty()) {
        return Some(format!("DBUS_SESSION_BUS_ADDRESS={}", a.to_string_lossy()));
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    let bus = Path::new(&runtime).join("bus");
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(&bus)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|_| bus.display().to_string())
}

/// The backend to use and the reason, in words (`list` and errors show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The backend.
    pub backend: Backend,
    /// Why it was chosen.
    pub reason: String,
}

/// Decides the backend. A forced choice is taken as is (opening it reports whether it works); `Auto`
/// follows the table in the module docs.
pub fn select(choice: BackendChoice, facts: &Facts) -> Selection {
    let pick = |backend, reason: String| Selection { backend, reason };
    if let BackendChoice::Forced(b) = choice {
        return pick(b, format!("{BACKEND_ENV} or --backend says `{b}`"));
    }
    match facts.platform {
        Platform::MacOs => pick(Backend::Keychain, "macOS: the login Keychain".into()),
        Platform::Windows => pick(Backend::Keychain, "Windows: Credential Manager".into()),
        Platform::Other => pick(
            Backend::File,
            "no OS keychain is supported on this platform".into(),
        ),
        Platform::FreeDesktop => match (&facts.session_bus, &facts.secret_service) {
            (Some(bus), Some(Probe::Answered)) => pick(
                Backend::Keychain,
                format!("the Secret Service answered on the D-Bus session bus ({bus})"),
            ),
            (Some(bus), Some(Probe::Locked(e))) => pick(
                Backend::Keychain,
                format!("a Secret Service is on the D-Bus session bus ({bus}) but refused access ({e}); unlock it, or choose PALISADE_SECRET_BACKEND=file"),
            ),
            (Some(bus), Some(Probe::Absent(e))) => pick(
                Backend::File,
                format!("the D-Bus session bus ({bus}) has no Secret Service: {e}"),
            ),
            _ => pick(
                Backend::File,
                "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus), so no Secret Service".into(),
            ),
        },
    }
}

/// Where palisade keeps its own secret files: `$XDG_DATA_HOME/palisade` (the file store) and
/// `$XDG_STATE_HOME/palisade` (the keychain's name index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// `$XDG_DATA_HOME/palisade`.
    pub data_dir: PathBuf,
    /// `$XDG_STATE_HOME/palisade`.
    pub state_dir: PathBuf,
}

impl Locations {
    /// From `XDG_DATA_HOME`/`XDG_STATE_HOME`, falling back to `~/.local/share` and `~/.local/state` (the
    /// same rules as the binary's `dirs.rs`: relative XDG values are ignored, as the spec says).
    pub fn from_env() -> Result<Self> {
        Ok(Locations {
            data_dir: xdg("XDG_DATA_HOME", ".local/share")?,
            state_dir: xdg("XDG_STATE_HOME", ".local/state")?,
        })
    }

    /// The file store's file.
    pub fn secrets_file(&self) -> PathBuf {
        self.data_dir.join("secrets.json")
    }

    /// The keychain's name index (names only, no values).
    pub fn keychain_index(&self) -> PathBuf {
        self.state_dir.join("keychain-index.json")
    }
}

fn xdg(var: &str, fallback: &str) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            return Ok(p.join("palisade"));
        }
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::Unavailable {
            backend: Backend::File,
            reason: format!("neither ${var} nor $HOME is set, so there is nowhere to keep secrets"),
            hint: Some(format!("set HOME or {var}")),
        })?;
    Ok(PathBuf::from(home).join(fallback).join("palisade"))
}

/// Opens the store `selection` names.
pub fn open(selection: &Selection, locations: &Locations) -> Result<Box<dyn SecretStore>> {
    Ok(match selection.backend {
        Backend::File => Box::new(crate::file::FileStore::new(locations.secrets_file())),
        Backend::Keychain => Box::new(crate::keychain::KeychainStore::new(
            locations.keychain_index(),
        )?),
        Backend::Keyutils => Box::new(crate::keyutils::KeyutilsStore::open()?),
    })
}

/// A store together with why it was chosen: what the CLI and the resolver work with.
pub struct Opened {
    /// The store.
    pub store: Box<dyn SecretStore>,
    /// Which backend and why.
    pub selection: Selection,
    /// Where palisade's files are.
    pub locations: Locations,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("selection", &self.selection)
            .field("location", &self.store.location())
            .finish()
    }
}

impl Opened {
    /// Chooses (gathering facts only for `Auto`) and opens a store.
    pub fn with_choice(choice: BackendChoice, locations: Locations) -> Result<Self> {
        let facts = match choice {
            BackendChoice::Auto => Facts::gather(),
            BackendChoice::Forced(_) => Facts {
                platform: Platform::current(),
                session_bus: None,
                secret_service: None,
            },
        };
        let selection = select(choice, &facts);
        let store = open(&selection, &locations)?;
        Ok(Opened {
            store,
            selection,
            locations,
        })
    }

    /// `PALISADE_SECRET_BACKEND` and the XDG locations from the environment.
    pub fn from_env() -> Result<Self> {
        Opened::with_choice(BackendChoice::from_env()?, Locations::from_env()?)
    }

    /// The hint for a name this store does not have: set it, or, when the file store has it while
    /// another backend is in use (the auto choice differs between a desktop and an SSH session), say so.
    pub fn not_found_hint(&self, name: &crate::SecretName) -> String {
        if self.selection.backend != Backend::File {
            let file = crate::file::FileStore::new(self.locations.secrets_file());
            if file.contains(name) {
                return format!(
                    "the file store ({}) has `{name}`: run with {BACKEND_ENV}=file, or move it with `palisade secret get {name} | {BACKEND_ENV}={} palisade secret set {name}`",
                    self.locations.secrets_file().display(),
                    self.selection.backend
                );
            }
        }
        format!(
            "store it with `palisade secret set {name}` (backend in use: {}, because {})",
            self.selection.backend, self.selection.reason
        )
    }
}
