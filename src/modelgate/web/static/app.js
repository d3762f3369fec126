// Small progressive enhancements shared by every page: copy buttons, confirmations, code tabs.
"use strict";

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function flash(button, label) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = label;
  setTimeout(() => { button.textContent = original; }, 1500);
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  flash(button, (await copyText(source.textContent.trim())) ? "Copied!" : "Copy failed");
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
  if (!event.defaultPrevented && event.target.getAttribute("action") === "/app/logout") {
    // Logging out forgets the playground conversations kept in this browser.
    try {
      Object.keys(localStorage).filter((k) => k.startsWith("mg-playground-")).forEach((k) => localStorage.removeItem(k));
    } catch (_) { /* storage disabled */ }
  }
});

function activateTab(group, name) {
  group.querySelectorAll("[role=tab]").forEach((tab) => {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
  });
  group.querySelectorAll("[role=tabpanel]").forEach((panel) => {
    panel.hidden = panel.dataset.tab !== name;
  });
}

document.addEventListener("click", (event) => {
  const tab = event.target.closest("[role=tab]");
  if (tab) activateTab(tab.closest("[data-tabs]"), tab.dataset.tab);
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach((group) => {
    const first = group.querySelector("[role=tab]");
    if (first) activateTab(group, first.dataset.tab);
  });
});

// A region that scrolls sideways (a wide table or code on a phone) must be reachable by keyboard:
// it gets tabindex=0 while it overflows (WCAG 2.1.1; axe "scrollable-region-focusable").
function markScrollers() {
  document.querySelectorAll(".table-wrap, pre").forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.dataset.scroller = "1";
    } else if (!scrolls && box.dataset.scroller) {
      box.removeAttribute("tabindex");
      delete box.dataset.scroller;
    }
  });
}
document.addEventListener("DOMContentLoaded", markScrollers);
window.addEventListener("resize", markScrollers);
window.markScrollers = markScrollers;

// Key on/off switches flip in place (no reload, focus stays on the switch); without JavaScript
// the form posts and the page reloads.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form.toggle-form");
  if (!form || event.defaultPrevented) return;
  event.preventDefault();
  const button = form.querySelector(".switch");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(String(response.status));
    const result = await response.json();
    const on = !result.disabled;
    button.setAttribute("aria-checked", on ? "true" : "false");
    button.querySelector(".switch-label").textContent = on ? "On" : "Off";
    form.querySelector("input[name=enable]").value = on ? "0" : "1";
    const row = form.closest("tr");
    if (row) {
      row.classList.toggle("disabled", !on);
      const tag = row.querySelector("[data-state=disabled]");
      if (!on && !tag) {
        const mark = document.createElement("span");
        mark.className = "tag bad";
        mark.dataset.state = "disabled";
        mark.textContent = "disabled";
        row.querySelector("td").append(" ", mark);
      } else if (on && tag) tag.remove();
    }
  } catch (_) {
    form.submit(); // fall back to the plain post
    return;
  } finally {
    button.disabled = false;
  }
  button.focus();
});
