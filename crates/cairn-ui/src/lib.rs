//! cairn-ui
