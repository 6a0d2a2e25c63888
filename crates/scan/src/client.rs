//! The MCP clients whose configs palisade reads, and the shapes their files take.

/// An MCP client (an application that starts MCP servers from a config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// Claude Desktop.
    ClaudeDesktop,
    /// Claude Code (CLI).
    ClaudeCode,
    /// Cursor.
    Cursor,
    /// Visual Studio Code (and Insiders, VSCodium).
    VsCode,
    /// Windsurf.
    Windsurf,
    /// Gemini CLI.
    GeminiCli,
    /// OpenAI Codex CLI.
    Codex,
    /// Zed.
    Zed,
    /// Kiro.
    Kiro,
    /// A file given on the command line whose client could not be told from its path.
    Other,
}

impl Client {
    /// Every client, in report order.
    pub const ALL: [Client; 10] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::VsCode,
        Client::Windsurf,
        Client::GeminiCli,
        Client::Codex,
        Client::Zed,
        Client::Kiro,
        Client::Other,
    ];

    /// Stable id (JSON output, `palisade wrap --client`).
    pub fn id(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::Windsurf => "windsurf",
            Client::GeminiCli => "gemini-cli",
            Client::Codex => "codex",
            Client::Zed => "zed",
            Client::Kiro => "kiro",
            Client::Other => "other",
        }
    }

    /// The name a person knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::Windsurf => "Windsurf",
            Client::GeminiCli => "Gemini CLI",
            Client::Codex => "Codex",
            Client::Zed => "Zed",
            Client::Kiro => "Kiro",
            Client::Other => "MCP config",
        }
    }

    /// The client with this [`id`](Client::id).
    pub fn from_id(id: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.id() == id)
    }
}

/// Where in a file the servers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `{"mcpServers": {NAME: {...}}}` (Claude Desktop, Cursor, Windsurf, Gemini CLI, Kiro, `.mcp.json`).
    McpServers,
    /// `~/.claude.json`: top-level `mcpServers`, `projects.<path>.mcpServers`, and per-project
    /// `enableAllProjectMcpServers`.
    ClaudeUser,
    /// Claude Code `settings.json`: no servers, only `enableAllProjectMcpServers`.
    ClaudeSettings,
    /// VS Code `mcp.json`: `{"servers": {...}}`.
    VsCodeMcp,
    /// VS Code `settings.json`: `{"mcp": {"servers": {...}}}`.
    VsCodeSettings,
    /// Zed `settings.json`: `{"context_servers": {...}}`.
    Zed,
    /// Codex `config.toml`: `[mcp_servers.NAME]`.
    CodexToml,
}

impl Shape {
    /// The file format.
    pub fn format(self) -> Format {
        match self {
            Shape::CodexToml => Format::Toml,
            _ => Format::Jsonc,
        }
    }
}

/// A config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON, read tolerantly (comments and trailing commas accepted).
    Jsonc,
    /// TOML.
    Toml,
}

impl Format {
    /// `"jsonc"` / `"toml"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonc => "jsonc",
            Format::Toml => "toml",
        }
    }
}

/// Whose file it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The user's own config (in HOME or the system).
    User,
    /// A project's config (inside a repository; often committed and shared).
    Project,
}

impl Scope {
    /// `"user"` / `"project"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
        }
    }
}
