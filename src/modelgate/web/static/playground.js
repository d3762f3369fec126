// Playground: builds a chat request, streams our SSE with fetch + ReadableStream, renders replies as
// safe Markdown (markdown.js builds DOM nodes; model text never goes through an HTML parser).
// One model, or two side by side on the same prompt. Stop (or Esc) aborts the request; the server
// bills what the model produced. The conversation is kept in this browser (localStorage, per
// account; logging out forgets it).
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("pg-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const models = Object.fromEntries(data.models.map((m) => [m.id, m]));
  const STORE = "mg-playground-v1:" + data.account; // per account: a shared browser keeps them apart
  const md = window.mgMarkdown;

  // state.panes: one per model shown; each keeps its own transcript (the same user turns).
  let state = { compare: false, panes: [{ model: $("pg-model").value, messages: [] }] };
  let busy = false;
  let controller = null;
  let generation = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- persistence -----------------------------------------------------------------------------
  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(state));
    } catch (_) { /* storage full or disabled: the chat still works */ }
  }

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "null");
      if (!saved || !Array.isArray(saved.panes) || !saved.panes.length) return;
      saved.panes = saved.panes.slice(0, 2).filter((p) => p && Array.isArray(p.messages));
      if (!saved.panes.length) return;
      state = { compare: Boolean(saved.compare) && saved.panes.length === 2, panes: saved.panes };
      if (data.requested && models[data.requested]) state.panes[0].model = data.requested;
    } catch (_) { /* a corrupt entry is ignored */ }
  }

  // ---- settings --------------------------------------------------------------------------------
  function modelOf(pane) { return models[pane.model]; }

  function syncModel() {
    const m = models[$("pg-model").value];
    if (!m) return;
    state.panes[0].model = m.id;
    $("pg-model-id").textContent = m.speed ? m.id + " · " + m.speed : m.id;
    const efforts = new Set(state.panes.flatMap((p) => (modelOf(p) || {}).efforts || []));
    $("pg-reasoning-row").hidden = efforts.size === 0;
    for (const option of $("pg-effort").options) {
      if (option.value) option.hidden = option.disabled = !efforts.has(option.value);
    }
    if ($("pg-effort").selectedOptions[0] && $("pg-effort").selectedOptions[0].disabled) $("pg-effort").value = "";
    const unavailable = state.panes.map(modelOf).filter((x) => x && x.unavailable);
    const warn = $("pg-unavailable");
    warn.hidden = unavailable.length === 0;
    warn.textContent = unavailable.map((x) => x.name + " is unavailable: " + x.unavailable).join(" ");
    $("pg-send").disabled = unavailable.length > 0;
    const max = $("pg-max-tokens");
    if (m.output_max) max.max = m.output_max; else max.removeAttribute("max");
    renderHeads();
    save();
  }

  function numberOrNull(id) {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  }

  function buildBody(pane, extraUser) {
    const m = modelOf(pane);
    const messages = [];
    const system = $("pg-system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    for (const msg of pane.messages) {
      if (msg.role === "user" || (msg.role === "assistant" && !msg.error && msg.content)) {
        messages.push({ role: msg.role, content: msg.content });
      }
    }
    if (extraUser) messages.push({ role: "user", content: extraUser });
    const body = { model: m.id, messages, stream: true, stream_options: { include_usage: true } };
    body.max_tokens = numberOrNull("pg-max-tokens") || data.defaultMaxTokens;
    const temperature = numberOrNull("pg-temperature");
    if (temperature !== null) body.temperature = temperature;
    const topP = numberOrNull("pg-top-p");
    if (topP !== null) body.top_p = topP;
    const effort = $("pg-effort").value;
    if (effort && (m.efforts || []).includes(effort)) body.reasoning_effort = effort;
    if ($("pg-json").checked) body.response_format = { type: "json_object" };
    return body;
  }

  // ---- rendering -------------------------------------------------------------------------------
  function paneBoxes() { return [...document.querySelectorAll(".pg-pane")]; }

  function renderHeads() {
    paneBoxes().forEach((box, i) => {
      const pane = state.panes[i];
      const head = box.querySelector(".pane-model");
      if (head && pane) head.textContent = (modelOf(pane) || { name: pane.model }).name;
    });
  }

  function layout() {
    const wrap = $("pg-panes");
    wrap.classList.toggle("compare", state.compare);
    $("pg-compare-row").hidden = !state.compare;
    $("pg-compare").setAttribute("aria-pressed", state.compare ? "true" : "false");
    const boxes = state.panes.map((pane, i) => {
      const box = el("div", "pg-pane");
      box.dataset.pane = String(i);
      const head = el("h2", "pane-model visually-hidden-single");
      box.appendChild(head);
      const list = el("div", "messages");
      list.setAttribute("role", "log");
      list.setAttribute("aria-live", "polite");
      list.setAttribute("tabindex", "0");
      list.setAttribute("aria-label", state.compare ? "Conversation " + (i + 1) : "Conversation");
      box.appendChild(list);
      if (!pane.messages.length) {
        list.appendChild(el("p", "muted pg-empty", i === 0
          ? "Send a message to start. Enter sends, Shift+Enter adds a line. Playground calls are billed to your account and logged with origin “playground”."
          : "The same prompt goes to this model too."));
      }
      for (const msg of pane.messages) showMessage(list, msg);
      return box;
    });
    wrap.replaceChildren(...boxes);
    renderHeads();
  }

  function follow(list, wasAtBottom) {
    if (wasAtBottom) list.scrollTop = list.scrollHeight;
  }

  function atBottom(list) {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  }

  function showMessage(list, msg) {
    const empty = list.querySelector(".pg-empty");
    if (empty) empty.remove();
    const box = el("div", "msg " + msg.role);
    box.appendChild(el("span", "role", msg.role === "user" ? "You" : "Assistant"));
    const reasoning = el("details", "reasoning");
    reasoning.appendChild(el("summary", null, "Reasoning"));
    const reasoningText = el("div", "reasoning-text");
    reasoning.appendChild(reasoningText);
    reasoning.hidden = !msg.reasoning;
    const content = el("div", "content");
    box.append(reasoning, content);
    const view = { box, reasoning, reasoningText, content, list };
    paint(view, msg);
    list.appendChild(box);
    return view;
  }

  function paint(view, msg) {
    view.reasoning.hidden = !msg.reasoning;
    view.reasoningText.textContent = msg.reasoning || "";
    if (msg.role === "assistant" && !msg.error) view.content.replaceChildren(md.render(msg.content || ""));
    else view.content.textContent = msg.content || "";
    view.box.classList.toggle("error", Boolean(msg.error));
    view.box.querySelectorAll(".reply-meta, .hint, .error-link").forEach((n) => n.remove());
    if (msg.error && msg.outOfCredits) {
      const p = el("p", "error-link");
      const a = el("a", null, "See how to get credits");
      a.href = "/app/billing#get-credits";
      p.appendChild(a);
      p.append(".");
      view.box.appendChild(p);
    }
    if (msg.meta) showMeta(view, msg);
  }

  function showMeta(view, msg) {
    const info = msg.meta;
    const meta = el("div", "reply-meta");
    const parts = [];
    if (info.stopped) {
      parts.push(["status", msg.content ? "stopped — billed for what the model produced" : "stopped before the first token"]);
      if (!info.cost) parts.push(["cost", info.lookupFailed ? "see the request logs" : "looking up…"]);
    } else {
      parts.push(["finish_reason", info.finish || "—"]);
    }
    parts.push(["prompt", info.usage ? info.usage.prompt_tokens : "—"]);
    parts.push(["completion", info.usage ? info.usage.completion_tokens : "—"]);
    const details = info.usage && info.usage.completion_tokens_details;
    parts.push(["reasoning", details && details.reasoning_tokens != null ? details.reasoning_tokens : 0]);
    if (info.cost) {
      parts.push(["credits", info.cost.credits_used]);
      parts.push(["USD", money(Number(info.cost.usd_spent))]);
    }
    for (const [label, value] of parts) {
      const item = el("span", "meta-item");
      item.dataset.field = label;
      item.textContent = label + ": " + value;
      meta.appendChild(item);
    }
    if (info.requestId) {
      const item = el("span", "meta-item");
      item.dataset.field = "request id";
      item.append("request id: ");
      const a = el("a", null, info.requestId);
      a.href = "/app/requests/" + encodeURIComponent(info.requestId);
      item.appendChild(a);
      meta.appendChild(item);
    }
    view.box.appendChild(meta);
    const m = models[info.model];
    if (info.finish === "length" && !msg.content && m && m.reasoning) {
      view.box.appendChild(el("p", "hint warning",
        "The model stopped on the token limit before answering (finish_reason \"length\" with empty content). " +
        "Reasoning models think before they answer: raise Max tokens (e.g. 15000) and try again."));
    }
  }

  // The site's one money format (modelgate/money.py usd_text): cents always, then only the digits
  // the amount needs (up to four significant ones), never scientific notation.
  function money(usd) {
    if (!isFinite(usd) || usd === 0) return "$0.00";
    if (usd < 0) return "-" + money(-usd);
    const decimals = Math.min(10, Math.max(2, 3 - Math.floor(Math.log10(usd))));
    const [whole, frac] = usd.toFixed(decimals).split(".");
    if (Number(usd.toFixed(decimals)) === 0) return "$0.00";
    const cents = frac.replace(/0+$/, "").padEnd(2, "0");
    return "$" + Number(whole).toLocaleString("en-US") + "." + cents;
  }

  async function refreshBalance() {
    try {
      const r = await fetch("/app/balance", { headers: { Accept: "application/json" } });
      if (r.ok) {
        const b = await r.json();
        $("pg-balance").textContent = b.display;
        $("pg-balance-box").classList.toggle("empty", b.credits <= 0);
      }
    } catch (_) { /* offline: keep the last figure */ }
  }
  window.mgRefreshBalance = refreshBalance; // the image and speech modes (playground_media.js) too

  // ---- streaming -------------------------------------------------------------------------------
  async function errorOf(response) {
    try {
      const body = await response.json();
      const err = body.error || {};
      return { message: err.message || body.message || response.statusText, code: err.code, requestId: body.requestId };
    } catch (_) {
      return { message: response.status + " " + response.statusText };
    }
  }

  async function streamInto(pane, view, msg, body, signal, gen) {
    const clientId = "pg-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
    const info = { finish: null, usage: null, cost: null, model: pane.model, stopped: false, requestId: null, clientId };
    const repaint = () => {
      if (gen !== generation) return;
      const bottom = atBottom(view.list);
      view.reasoning.hidden = !msg.reasoning;
      view.reasoningText.textContent = msg.reasoning;
      view.content.replaceChildren(md.render(msg.content));
      follow(view.list, bottom);
    };
    let scheduled = false;
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => { scheduled = false; repaint(); });
    };
    try {
      const response = await fetch("/app/playground/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRF-Token": csrf, "X-Client-Request-Id": clientId },
        body: JSON.stringify(body),
        signal,
      });
      info.requestId = response.headers.get("x-inference-id");
      if (!response.ok) {
        const err = await errorOf(response);
        const e = new Error(err.message);
        e.code = err.code;
        e.requestId = err.requestId || info.requestId;
        throw e;
      }
      view.box.classList.remove("typing");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data:")) continue;
            const payload = line.slice(5).trim();
            if (payload === "[DONE]") { done = true; break; }
            const frame = JSON.parse(payload);
            if (frame.error) {
              const e = new Error(frame.error.message || "The stream failed");
              e.code = frame.error.code;
              throw e;
            }
            for (const choice of frame.choices || []) {
              const delta = choice.delta || {};
              const thought = delta.reasoning_content || delta.reasoning;
              if (thought) msg.reasoning += thought;
              if (delta.content) msg.content += delta.content;
              if (choice.finish_reason) info.finish = choice.finish_reason;
            }
            if (frame.usage) info.usage = frame.usage;
            if (frame.meta && frame.meta.usage) info.cost = frame.meta.usage;
            schedule();
          }
        }
      }
    } catch (err) {
      if (err.name === "AbortError") {
        info.stopped = true;
      } else {
        msg.error = true;
        msg.outOfCredits = err.code === "insufficient_credits";
        msg.content = msg.outOfCredits
          ? "Not sent: your balance is empty, and this model costs money. Nothing was charged."
          : "Error: " + err.message + (err.requestId ? " (request id " + err.requestId + ")" : "");
        if (msg.outOfCredits && $("pg-no-credits")) $("pg-no-credits").hidden = true; // one message, not two
      }
    }
    if (gen !== generation) return; // cleared meanwhile: this reply belongs to no conversation now
    if (!msg.error) msg.meta = info;
    view.box.classList.remove("typing");
    view.box.removeAttribute("aria-busy");
    const bottom = atBottom(view.list);
    paint(view, msg);
    follow(view.list, bottom);
    if (info.stopped) lookUpStopped(view, msg, info, gen);
  }

  // A stopped stream never receives its usage frame: the request log has what it cost, written
  // once the server has settled it (usually within a second, far later on a busy server). Looked
  // up with a growing interval for LOOKUP_MS: a 404 (not written yet), a 429, a 5xx or a failed
  // fetch is tried again; any other answer ends the lookup ("see the request logs").
  const LOOKUP_MS = 180000;
  async function lookUpStopped(view, msg, info, gen) {
    const id = info.requestId || info.clientId;
    const until = Date.now() + LOOKUP_MS;
    for (let wait = 300; gen === generation && Date.now() < until; wait = Math.min(wait * 1.5, 3000)) {
      await new Promise((done) => setTimeout(done, wait));
      let r;
      try {
        r = await fetch("/app/requests/" + encodeURIComponent(id), { headers: { Accept: "application/json" } });
      } catch (_) { continue; }
      if (r.status === 404 || r.status === 429 || r.status >= 500) continue;
      if (!r.ok) break;
      try {
        const row = (await r.json()).data[0];
        info.requestId = row.inference_id;
        info.usage = { prompt_tokens: row.prompt_tokens, completion_tokens: row.completion_tokens,
          completion_tokens_details: { reasoning_tokens: row.reasoning_tokens } };
        info.cost = { credits_used: row.credits, usd_spent: row.credits / 2000000 };
      } catch (_) { break; }
      if (gen !== generation) return;
      paint(view, msg);
      save();
      refreshBalance();
      return;
    }
    info.lookupFailed = true;
    if (gen === generation) paint(view, msg);
  }

  async function send(text) {
    busy = true;
    controller = new AbortController();
    const gen = generation;
    setBusy(true);
    const boxes = paneBoxes();
    const jobs = state.panes.map((pane, i) => {
      const list = boxes[i].querySelector(".messages");
      const body = buildBody(pane, text);
      const user = { role: "user", content: text };
      pane.messages.push(user);
      showMessage(list, user);
      const reply = { role: "assistant", content: "", reasoning: "" };
      pane.messages.push(reply);
      const view = showMessage(list, reply);
      view.box.classList.add("typing");
      view.box.setAttribute("aria-busy", "true");
      view.content.replaceChildren(typingDots());
      list.scrollTop = list.scrollHeight;
      return streamInto(pane, view, reply, body, controller.signal, gen);
    });
    save();
    await Promise.all(jobs);
    if (gen === generation) save();
    busy = false;
    controller = null;
    setBusy(false);
    refreshBalance();
  }

  function typingDots() {
    const dots = el("span", "typing-dots");
    dots.setAttribute("aria-label", "The model is writing");
    dots.setAttribute("role", "img");
    for (let i = 0; i < 3; i++) dots.appendChild(el("span"));
    return dots;
  }

  function setBusy(on) {
    $("pg-send").hidden = on;
    $("pg-stop").hidden = !on;
    if (on) $("pg-stop").focus({ preventScroll: true });
    else if (document.activeElement === $("pg-stop") || document.activeElement === document.body) $("pg-input").focus({ preventScroll: true });
    syncModel();
  }

  function stop() {
    if (controller) controller.abort();
  }

  function clearChat() {
    stop();
    generation += 1;
    busy = false;
    controller = null;
    state.panes.forEach((p) => { p.messages = []; });
    save();
    layout();
    setBusy(false);
    $("pg-status").textContent = "Chat cleared.";
  }

  function setCompare(on) {
    if (busy) return;
    state.compare = on;
    if (on && state.panes.length < 2) {
      const other = $("pg-model-2").value;
      state.panes.push({ model: other, messages: state.panes[0].messages.map((m) => ({ ...m })) });
    }
    if (!on) state.panes = state.panes.slice(0, 1);
    layout();
    syncModel();
  }

  // ---- "View code" -----------------------------------------------------------------------------
  function toPython(value, indent) {
    const pad = "    ".repeat(indent + 1);
    const end = "    ".repeat(indent);
    if (value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number") return String(value);
    if (Array.isArray(value)) {
      if (!value.length) return "[]";
      return "[\n" + value.map((v) => pad + toPython(v, indent + 1)).join(",\n") + ",\n" + end + "]";
    }
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    return "{\n" + keys.map((k) => pad + JSON.stringify(k) + ": " + toPython(value[k], indent + 1)).join(",\n") + ",\n" + end + "}";
  }

  function codeSamples(body) {
    const url = data.apiBase + "/v1/chat/completions";
    const python = [
      "import json",
      "import requests",
      "",
      "response = requests.post(",
      `    "${url}",`,
      "    headers={",
      '        "Authorization": "Bearer <YOUR_MODELGATE_KEY>",',
      '        "Content-Type": "application/json",',
      "    },",
      "    json=" + toPython(body, 1) + ",",
      body.stream ? "    stream=True,\n)\n\nfor line in response.iter_lines():\n    if line.startswith(b\"data: \") and line != b\"data: [DONE]\":\n        print(json.loads(line[6:]))"
                  : ")\n\nprint(json.dumps(response.json(), indent=2, ensure_ascii=False))",
    ].join("\n");
    const js = [
      "async function main() {",
      `  const response = await fetch('${url}', {`,
      "    method: 'POST',",
      "    headers: {",
      "      'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',",
      "      'Content-Type': 'application/json',",
      "    },",
      "    body: JSON.stringify(" + JSON.stringify(body, null, 2).replace(/\n/g, "\n    ") + "),",
      "  });",
      "  if (!response.ok) throw new Error(`HTTP error! Status ${response.status}`);",
      body.stream
        ? "  const reader = response.body.getReader();\n  const decoder = new TextDecoder();\n  for (;;) {\n    const { done, value } = await reader.read();\n    if (done) break;\n    process.stdout.write(decoder.decode(value, { stream: true }));\n  }"
        : "  console.log(JSON.stringify(await response.json(), null, 2));",
      "}",
      "",
      "main();",
    ].join("\n");
    const json = JSON.stringify(body, null, 2).replace(/'/g, "'\\''");
    const curl = `curl -N --request POST \\\n  --url '${url}' \\\n  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n  --header 'Content-Type: application/json' \\\n  --data '${json}'`;
    return { python, js, curl };
  }

  function showCode() {
    const pane = state.panes[0];
    const draft = $("pg-input").value.trim();
    const lastUser = pane.messages.map((m) => m.role).lastIndexOf("user");
    let body;
    if (draft || lastUser < 0) {
      body = buildBody(pane, draft || "Hello!");
      $("code-what").textContent = draft
        ? "The exact body the playground will send for the message you are typing, against the public endpoint."
        : "An example body (you have not sent anything yet), against the public endpoint.";
    } else { // the last request as it was sent: the conversation up to its user turn, not its reply
      body = buildBody({ model: pane.model, messages: pane.messages.slice(0, lastUser + 1) }, "");
      $("code-what").textContent = "The exact body of the last request the playground sent, against the public endpoint.";
    }
    const samples = codeSamples(body);
    $("code-python").textContent = samples.python;
    $("code-javascript").textContent = samples.js;
    $("code-curl").textContent = samples.curl;
    $("code-dialog").showModal();
  }

  // ---- wiring ----------------------------------------------------------------------------------
  function submit() {
    const text = $("pg-input").value.trim();
    if (!text || busy || $("pg-send").disabled) return;
    $("pg-input").value = "";
    send(text);
  }

  load();
  if (state.panes[0].model && models[state.panes[0].model]) $("pg-model").value = state.panes[0].model;
  if (state.panes[1] && models[state.panes[1].model]) $("pg-model-2").value = state.panes[1].model;
  $("pg-model").addEventListener("change", syncModel);
  $("pg-model-2").addEventListener("change", () => {
    if (state.panes[1]) state.panes[1].model = $("pg-model-2").value;
    syncModel();
  });
  $("pg-form").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  $("pg-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && busy && !$("code-dialog").open) {
      event.preventDefault();
      stop();
    }
  });
  $("pg-stop").addEventListener("click", stop);
  $("clear-chat").addEventListener("click", clearChat);
  $("pg-compare").addEventListener("click", () => setCompare(!state.compare));
  $("view-code").addEventListener("click", showCode);
  $("code-close").addEventListener("click", () => $("code-dialog").close());
  $("pg-panes").addEventListener("click", async (event) => {
    const button = event.target.closest(".copy-code");
    if (!button) return;
    const code = button.closest(".codeblock").querySelector("code");
    const ok = await window.copyText(code.textContent);
    window.flash(button, ok ? "Copied!" : "Copy failed");
  });
  const wide = window.matchMedia("(min-width: 760px)");
  const openSettings = () => { $("pg-more").open = wide.matches; };
  openSettings();
  wide.addEventListener("change", openSettings);
  layout();
  syncModel();
  paneBoxes().forEach((box) => { const list = box.querySelector(".messages"); list.scrollTop = list.scrollHeight; });
})();
