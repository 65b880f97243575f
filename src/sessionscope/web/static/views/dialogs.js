// Confirmation dialogs on the native <dialog>: Esc cancels, focus returns to the opener.
import { h } from "../dom.js";

/**
 * Ask for confirmation. Resolves to null when cancelled (button, Esc or backdrop), or to
 * {instructions} (the textarea's text, when `textarea` is given) when confirmed.
 *
 *   confirmDialog({title, body: ["paragraph", ...], confirmLabel, danger, textarea: {label, placeholder}})
 */
export function confirmDialog({ title, body = [], confirmLabel = "Confirm", danger = false, textarea = null }) {
  const opener = document.activeElement;
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const input = textarea
    ? h("textarea", { name: "instructions", rows: 4, placeholder: textarea.placeholder || "", class: "dialog-input" })
    : null;
  const cancel = h("button", { type: "button", class: "btn", value: "cancel", "data-action": "cancel" }, "Cancel");
  const confirm = h("button", { type: "submit", class: ["btn", danger ? "btn-danger" : "btn-primary"],
    value: "confirm", "data-action": "confirm" }, confirmLabel);
  const form = h("form", { method: "dialog" },
    h("h2", { id: titleId, class: "dialog-title" }, title),
    ...body.map((text) => h("p", { class: "dialog-text" }, text)),
    input ? h("label", { class: "dialog-label" }, textarea.label, input) : null,
    h("div", { class: "dialog-actions" }, cancel, confirm));
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId, "data-dialog": "confirm" }, form);
  document.body.append(dialog);

  return new Promise((resolve) => {
    let result = null;
    cancel.addEventListener("click", () => dialog.close("cancel"));
    form.addEventListener("submit", () => {
      result = { instructions: input ? input.value.trim() : "" };
    });
    // A click on the backdrop (the dialog box itself, outside the form) cancels.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close("cancel");
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(dialog.returnValue === "confirm" ? result || { instructions: "" } : null);
    });
    dialog.showModal();
    (input || cancel).focus();
  });
}

/** A message box with one button, for results that deserve more than a toast (body: text or nodes). */
export function messageDialog({ title, body = [], wide = false }) {
  const opener = document.activeElement;
  const ok = h("button", { type: "submit", class: "btn btn-primary", value: "ok" }, "OK");
  const dialog = h("dialog", { class: ["dialog", wide ? "dialog-wide" : null], "data-dialog": "message" },
    h("form", { method: "dialog" },
      h("h2", { class: "dialog-title" }, title),
      ...body.map((part) => (part instanceof Node ? part : h("p", { class: "dialog-text" }, part))),
      h("div", { class: "dialog-actions" }, ok)));
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve();
    });
    dialog.showModal();
    ok.focus();
  });
}
