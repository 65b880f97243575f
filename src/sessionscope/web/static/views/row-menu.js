// A row's actions (archive or unarchive, delete) behind a menu button, each confirmed first.
//
// The button stays out of the tab order (a row has one tab stop: its link); Shift+F10 or the
// context-menu key on the row's link opens the menu. Inside it, arrows move, Enter or Space
// chooses, Esc or Tab closes, and focus returns to where it was.
import { rpc } from "../api.js";
import { h, notify } from "../dom.js";
import { confirmDialog } from "./dialogs.js";

let openMenu = null; // the one menu open, {close}

function confirmArchive(name) {
  return confirmDialog({
    title: "Archive this session?",
    body: [`“${name}” leaves the default session list; nothing is deleted. `
      + "The Archived filter shows it, and Unarchive brings it back."],
    confirmLabel: "Archive session" });
}

function confirmDelete(name) {
  return confirmDialog({
    title: "Delete this session?",
    body: [`This permanently removes “${name}” with all its messages, executions and search entries. `
      + "This cannot be undone.", "Export it first if you want to keep a copy."],
    confirmLabel: "Delete session", danger: true });
}

/** The actions of one list row: `row` is a session.list row, `onChanged` reloads the list. */
function rowActions(row, onChanged) {
  const name = row.label || row.key;
  const scope = { key: row.key, tenant: row.tenant };
  const act = (method, confirm, done) => async () => {
    if (confirm && !(await confirm(name))) return;
    try {
      await rpc(method, scope);
    } catch (err) {
      notify(`Could not change “${name}”: ${err.message}`, { kind: "error" });
      return;
    }
    notify(done);
    onChanged();
  };
  return [
    row.archived_at
      ? { id: "unarchive", label: "Unarchive", run: act("session.unarchive", null, `“${name}” is back in the list.`) }
      : { id: "archive", label: "Archive…", run: act("session.archive", confirmArchive, `Archived “${name}”.`) },
    { id: "delete", label: "Delete…", danger: true, run: act("session.delete", confirmDelete, `Deleted “${name}”.`) },
  ];
}

/** The menu cell's button; `link` is the row's link, which opens the menu from the keyboard. */
export function rowMenu(row, link, { onChanged }) {
  const menuId = `row-menu-${Math.random().toString(36).slice(2)}`;
  const button = h("button", { type: "button", class: "btn btn-quiet btn-small row-menu-button", tabindex: -1,
    "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": menuId,
    "aria-label": `Actions for ${row.label || row.key}` }, "⋯");
  const wrap = h("div", { class: "row-menu" }, button);

  function open() {
    openMenu?.close({ restore: false });
    const opener = document.activeElement;
    const actions = rowActions(row, onChanged);
    const items = actions.map((action) => h("button", {
      type: "button", role: "menuitem", tabindex: -1, class: ["row-menu-item", action.danger ? "danger" : null],
      "data-menu-action": action.id }, action.label));
    const menu = h("div", { role: "menu", id: menuId, class: "row-menu-list", "aria-label": button.getAttribute("aria-label") },
      ...items);
    const close = ({ restore = true } = {}) => {
      menu.remove();
      document.removeEventListener("pointerdown", outside, true);
      button.setAttribute("aria-expanded", "false");
      if (openMenu?.menu === menu) openMenu = null;
      if (restore && opener?.isConnected) opener.focus();
    };
    const outside = (event) => { if (!wrap.contains(event.target)) close({ restore: false }); };
    items.forEach((item, i) => item.addEventListener("click", () => { close(); actions[i].run(); }));
    menu.addEventListener("keydown", (event) => {
      const at = items.indexOf(document.activeElement);
      const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        items[(moves[event.key] + items.length) % items.length].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation(); // Esc closes the menu, not the page
        close();
      } else if (event.key === "Tab") {
        close({ restore: false });
      }
    });
    wrap.append(menu);
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("pointerdown", outside, true);
    openMenu = { menu, close };
    items[0].focus();
  }

  button.addEventListener("click", () => (button.getAttribute("aria-expanded") === "true" ? openMenu?.close() : open()));
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); open(); }
  });
  link.addEventListener("keydown", (event) => {
    if (event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey)) {
      event.preventDefault();
      open();
    }
  });
  return wrap;
}
