//! Top-level `import` and `export`: a function body cannot hold them, so they are found by
//! parsing the body as a module and rewritten in place, one character for one character
//! (see the crate documentation).

use std::borrow::Cow;

use swc_common::{BytePos, Spanned};
use swc_ecma_ast::{
    DefaultDecl, EsVersion, ImportSpecifier, Module, ModuleDecl, ModuleItem, TsModuleRef,
};
use swc_ecma_lexer::{lexer::Lexer, Parser, StringInput, Syntax, TsSyntax};

use crate::swc::clean_message;
use crate::Diagnostic;

/// Whether `import` or `export` appears as a word (cheap test before parsing as a module).
pub(crate) fn mentions_module_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    for word in ["import", "export"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(word) {
            let at = from + found;
            let after = at + word.len();
            let before_ok = at == 0 || !is_ident(bytes[at - 1]);
            let after_ok = after >= bytes.len() || !is_ident(bytes[after]);
            if before_ok && after_ok {
                return true;
            }
            from = after;
        }
    }
    false
}

/// Parse `text` as a module and rewrite its top-level module declarations (see crate docs).
pub(crate) fn blank_module_syntax(text: &str) -> Result<Cow<'_, str>, Diagnostic> {
    let module = parse_module(text)?;
    let mut edits: Vec<Edit> = Vec::new();
    for item in &module.body {
        if let ModuleItem::ModuleDecl(decl) = item {
            edits.push(edit_for(decl, text)?);
        }
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    Ok(Cow::Owned(apply_edits(text, &edits)))
}

/// `text` parsed as a TypeScript module, its positions starting at 1 (0 is swc's dummy
/// position); a syntax error is a [`Diagnostic`].
fn parse_module(text: &str) -> Result<Module, Diagnostic> {
    let input = StringInput::new(text, BytePos(1), BytePos(1 + text.len() as u32));
    let lexer = Lexer::new(
        Syntax::Typescript(TsSyntax::default()),
        EsVersion::latest(),
        input,
        None,
    );
    let mut parser = Parser::new_from(lexer);
    let module = match parser.parse_module() {
        Ok(module) => module,
        Err(err) => {
            let offset = (err.span().lo.0 as usize).saturating_sub(1).min(text.len());
            return Err(Diagnostic::at_offset(
                clean_message(&err.kind().msg()),
                text,
                offset,
                text,
            ));
        }
    };
    // Recoverable errors (a top-level `return`, strict-mode complaints) are left to the real
    // parse inside the wrapper, which is what decides.
    drop(parser.take_errors());
    Ok(module)
}

/// How one top-level module declaration of `text` is rewritten, or why it cannot be.
fn edit_for(decl: &ModuleDecl, text: &str) -> Result<Edit, Diagnostic> {
    let off = |pos: BytePos| (pos.0 as usize).saturating_sub(1).min(text.len());
    let span = decl.span();
    let (lo, hi) = (off(span.lo), off(span.hi));
    let unsupported =
        |message: &str| Err(Diagnostic::at_offset(message.to_string(), text, lo, text));
    match decl {
        ModuleDecl::Import(import) => {
            let type_only = import.type_only
                || (!import.specifiers.is_empty()
                    && import
                        .specifiers
                        .iter()
                        .all(|s| matches!(s, ImportSpecifier::Named(n) if n.is_type_only)));
            if !type_only {
                return unsupported(&format!(
                    "Cannot import {:?}: a codemode program cannot load modules (only `import type` is allowed)",
                    &*import.src.value
                ));
            }
            Ok(Edit::Statement(lo, hi))
        }
        ModuleDecl::ExportDecl(export) => Ok(Edit::Blank(lo, off(export.decl.span().lo))),
        ModuleDecl::ExportDefaultDecl(export) => {
            let named = match &export.decl {
                DefaultDecl::Class(c) => c.ident.is_some(),
                DefaultDecl::Fn(f) => f.ident.is_some(),
                DefaultDecl::TsInterfaceDecl(_) => true,
            };
            if !named {
                return unsupported(
                    "`export default` is not supported in a codemode program: give the function or class a name, or `return` the value",
                );
            }
            Ok(Edit::Blank(lo, off(export.decl.span().lo)))
        }
        ModuleDecl::ExportDefaultExpr(_) => unsupported(
            "`export default` is not supported in a codemode program: use `return` to give the result",
        ),
        ModuleDecl::ExportNamed(_) | ModuleDecl::ExportAll(_) | ModuleDecl::TsNamespaceExport(_) => {
            Ok(Edit::Statement(lo, hi))
        }
        ModuleDecl::TsImportEquals(import) => {
            if import.is_type_only {
                Ok(Edit::Statement(lo, hi))
            } else if let TsModuleRef::TsEntityName(_) = import.module_ref {
                // `[export] import x = A.B` → `const x = A.B` (at least "import " is blanked).
                Ok(Edit::Const(lo, off(import.id.span.lo)))
            } else {
                unsupported(
                    "`import … = require(…)` is not supported: a codemode program cannot load modules",
                )
            }
        }
        ModuleDecl::TsExportAssignment(_) => unsupported(
            "`export =` is not supported in a codemode program: use `return` to give the result",
        ),
    }
}

/// A rewrite of `text[lo..hi]` that keeps every line and column.
enum Edit {
    /// Blank with spaces.
    Blank(usize, usize),
    /// Blank a whole statement, leaving `;` at its first column.
    Statement(usize, usize),
    /// Write `const` at the start and blank the rest.
    Const(usize, usize),
}

fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for edit in edits {
        let (lo, hi, head) = match *edit {
            Edit::Blank(lo, hi) => (lo, hi, ""),
            Edit::Statement(lo, hi) => (lo, hi, ";"),
            Edit::Const(lo, hi) => (lo, hi, "const"),
        };
        if lo < copied || hi < lo || !text.is_char_boundary(lo) || !text.is_char_boundary(hi) {
            continue;
        }
        out.push_str(&text[copied..lo]);
        let mut head = head.chars();
        for c in text[lo..hi].chars() {
            if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                out.push(c);
            } else if let Some(h) = head.next() {
                out.push(h);
            } else {
                out.push(' ');
            }
        }
        copied = hi;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_words_are_words() {
        assert!(mentions_module_syntax("import type { A } from 'a'"));
        assert!(mentions_module_syntax("x\nexport const a = 1"));
        assert!(!mentions_module_syntax(
            "const importance = exports_ + reexport"
        ));
        assert!(!mentions_module_syntax("return 1"));
    }
}
