// Playground: builds a chat request, streams our SSE with fetch + ReadableStream, renders text safely.
// Model output is untrusted: it only ever reaches the page through textContent.
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("pg-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const models = Object.fromEntries(data.models.map((m) => [m.id, m]));
  const conversation = [];
  let busy = false;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function currentModel() { return models[$("pg-model").value]; }

  function syncModel() {
    const m = currentModel();
    if (!m) return;
    $("pg-model-id").textContent = m.speed ? m.id + " · " + m.speed : m.id;
    $("pg-reasoning-row").hidden = !m.reasoning;
    const warn = $("pg-unavailable");
    warn.hidden = !m.unavailable;
    warn.textContent = m.unavailable ? "Unavailable: " + m.unavailable : "";
    $("pg-send").disabled = Boolean(m.unavailable) || busy;
    const max = $("pg-max-tokens");
    if (m.output_max) max.max = m.output_max; else max.removeAttribute("max");
  }

  function numberOrNull(id) {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  }

  function buildBody() {
    const m = currentModel();
    const messages = [];
    const system = $("pg-system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...conversation);
    const body = { model: m.id, messages, stream: true, stream_options: { include_usage: true } };
    body.max_tokens = numberOrNull("pg-max-tokens") || data.defaultMaxTokens;
    const temperature = numberOrNull("pg-temperature");
    if (temperature !== null) body.temperature = temperature;
    const topP = numberOrNull("pg-top-p");
    if (topP !== null) body.top_p = topP;
    if (m.reasoning && $("pg-effort").value) body.reasoning_effort = $("pg-effort").value;
    if ($("pg-json").checked) body.response_format = { type: "json_object" };
    return body;
  }

  function addMessage(role, text) {
    const empty = $("pg-empty");
    if (empty) empty.remove();
    const box = el("div", "msg " + role);
    box.appendChild(el("span", "role", role));
    const reasoning = el("div", "reasoning");
    const content = el("div", "content", text || "");
    box.append(reasoning, content);
    $("pg-messages").appendChild(box);
    return { box, reasoning, content };
  }

  function showMeta(view, info) {
    const meta = el("div", "reply-meta");
    const parts = [
      ["finish_reason", info.finish || "—"],
      ["prompt", info.usage ? info.usage.prompt_tokens : "—"],
      ["completion", info.usage ? info.usage.completion_tokens : "—"],
    ];
    const details = info.usage && info.usage.completion_tokens_details;
    parts.push(["reasoning", details && details.reasoning_tokens != null ? details.reasoning_tokens : 0]);
    if (info.cost) {
      parts.push(["credits", info.cost.credits_used]);
      parts.push(["USD", "$" + Number(info.cost.usd_spent).toFixed(6)]);
    }
    for (const [label, value] of parts) {
      const item = el("span", "meta-item");
      item.dataset.field = label;
      item.textContent = label + ": " + value;
      meta.appendChild(item);
    }
    view.box.appendChild(meta);
    const m = currentModel();
    if (info.finish === "length" && !view.content.textContent && m && m.reasoning) {
      view.box.appendChild(el("p", "hint warning",
        "The model stopped on the token limit before answering (finish_reason \"length\" with empty content). " +
        "Reasoning models think before they answer: raise Max tokens (e.g. 15000) and try again."));
    }
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return (body.error && body.error.message) || body.message || response.statusText;
    } catch (_) {
      return response.status + " " + response.statusText;
    }
  }

  async function send(text) {
    busy = true;
    syncModel();
    conversation.push({ role: "user", content: text });
    addMessage("user", text);
    const body = buildBody();
    const view = addMessage("assistant", "");
    view.box.setAttribute("aria-busy", "true");
    const info = { finish: null, usage: null, cost: null };
    try {
      const response = await fetch("/app/playground/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new Error(await errorMessage(response));
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
            if (frame.error) throw new Error(frame.error.message || "The stream failed");
            for (const choice of frame.choices || []) {
              const delta = choice.delta || {};
              const thought = delta.reasoning_content || delta.reasoning;
              if (thought) view.reasoning.textContent += thought;
              if (delta.content) view.content.textContent += delta.content;
              if (choice.finish_reason) info.finish = choice.finish_reason;
            }
            if (frame.usage) info.usage = frame.usage;
            if (frame.meta && frame.meta.usage) info.cost = frame.meta.usage;
          }
        }
      }
      conversation.push({ role: "assistant", content: view.content.textContent });
      showMeta(view, info);
    } catch (err) {
      conversation.pop();
      view.box.classList.add("error");
      view.content.textContent = "Error: " + err.message;
    } finally {
      view.box.removeAttribute("aria-busy");
      busy = false;
      syncModel();
    }
  }

  // ---- "View code" ------------------------------------------------------------------------------
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
      '        "Authorization": "Bearer <YOUR_AIMLAPI_KEY>",',
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
      "      'Authorization': 'Bearer <YOUR_AIMLAPI_KEY>',",
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
    const curl = `curl -N --request POST \\\n  --url '${url}' \\\n  --header 'Authorization: Bearer <YOUR_AIMLAPI_KEY>' \\\n  --header 'Content-Type: application/json' \\\n  --data '${json}'`;
    return { python, js, curl };
  }

  function showCode() {
    const body = buildBody();
    if (!body.messages.some((m) => m.role === "user")) {
      const draft = $("pg-input").value.trim() || "Hello!";
      body.messages.push({ role: "user", content: draft });
    }
    const samples = codeSamples(body);
    $("code-python").textContent = samples.python;
    $("code-javascript").textContent = samples.js;
    $("code-curl").textContent = samples.curl;
    $("code-dialog").showModal();
  }

  // ---- wiring -----------------------------------------------------------------------------------
  $("pg-model").addEventListener("change", syncModel);
  $("pg-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("pg-input").value.trim();
    if (!text || busy || (currentModel() && currentModel().unavailable)) return;
    $("pg-input").value = "";
    send(text);
  });
  $("pg-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("pg-form").requestSubmit();
  });
  $("clear-chat").addEventListener("click", () => {
    conversation.length = 0;
    $("pg-messages").replaceChildren(el("p", "muted", "Chat cleared."));
  });
  $("view-code").addEventListener("click", showCode);
  $("code-close").addEventListener("click", () => $("code-dialog").close());
  syncModel();
})();
