//! Text, JSON and SARIF renderings of a code [`crate::Report`].
