// CodeMirror 6 editors: the program editor (TypeScript, Ctrl/Cmd+Enter runs, the failing
// line marked with `cm-codemode-error-line` until the next edit or run) and read-only viewers.

import { javascript } from "@codemirror/lang-javascript";
import { syntaxHighlighting } from "@codemirror/language";
import { EditorState, Prec, StateEffect, StateField } from "@codemirror/state";
import { Decoration, type DecorationSet, EditorView, keymap } from "@codemirror/view";
import { classHighlighter } from "@lezer/highlight";
import { basicSetup } from "codemirror";

const setErrorLine = StateEffect.define<{ line: number; message: string } | null>();

const errorLineField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decorations, tr) {
    for (const effect of tr.effects) {
      if (!effect.is(setErrorLine)) continue;
      if (effect.value === null) return Decoration.none;
      const line = tr.state.doc.line(effect.value.line);
      const mark = Decoration.line({ class: "cm-codemode-error-line", attributes: { title: effect.value.message } });
      return Decoration.set([mark.range(line.from)]);
    }
    return tr.docChanged ? Decoration.none : decorations.map(tr.changes);
  },
  provide: (field) => EditorView.decorations.from(field),
});

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "13px" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.55" },
  ".cm-gutters": { background: "var(--panel-2)", border: "none", color: "#9aa3ad" },
  ".cm-activeLineGutter": { background: "#e9edf2" },
  ".cm-activeLine": { background: "#f6f8fb" },
  "&.cm-focused": { outline: "none" },
});

export interface ProgramEditor {
  view: EditorView;
  code(): string;
  markError(line: number, message: string): void;
  clearError(): void;
}

export function programEditor(parent: HTMLElement, doc: string, onRun: () => void): ProgramEditor {
  const run = () => {
    onRun();
    return true;
  };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        Prec.highest(keymap.of([{ key: "Mod-Enter", run }, { key: "Ctrl-Enter", run }])),
        basicSetup,
        javascript({ typescript: true }),
        syntaxHighlighting(classHighlighter),
        errorLineField,
        theme,
      ],
    }),
  });
  return {
    view,
    code: () => view.state.doc.toString(),
    markError(line, message) {
      const lines = view.state.doc.lines;
      const target = Math.min(Math.max(1, line), lines);
      const pos = view.state.doc.line(target).from;
      view.dispatch({
        effects: [setErrorLine.of({ line: target, message }), EditorView.scrollIntoView(pos, { y: "center" })],
      });
    },
    clearError() {
      view.dispatch({ effects: setErrorLine.of(null) });
    },
  };
}

/** A read-only, highlighted, line-wrapped TypeScript viewer. */
export function codeViewer(parent: HTMLElement, doc: string): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        EditorState.readOnly.of(true),
        EditorView.editable.of(false),
        EditorView.lineWrapping,
        javascript({ typescript: true }),
        syntaxHighlighting(classHighlighter),
        theme,
      ],
    }),
  });
}
