// Playground image and speech modes: the same page, another form. An image model's prompt goes to
// POST /app/playground/images (b64_json, shown as <img> from a data: URL), a speech model's text to
// POST /app/playground/speech (the audio bytes, played from a blob: URL). Both are the public doors,
// billed to the logged-in account (origin: playground); the cost comes from the answer's headers.
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("pg-data").textContent);
  const media = data.media || [];
  if (!media.length) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const chatParts = [document.querySelector(".pg"), $("pg-compare"), $("view-code"), $("clear-chat")];
  let mode = "chat";
  let audioUrl = null;

  function option(value, label) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = label;
    return node;
  }

  function current() { return media.find((m) => m.id === $("pgm-model").value); }

  function setMode(next) {
    mode = next;
    for (const b of document.querySelectorAll("[data-mode]")) b.setAttribute("aria-pressed", String(b.dataset.mode === next));
    for (const node of chatParts) if (node) node.hidden = next !== "chat";
    $("pg-media").hidden = next === "chat";
    if (next === "chat") return;
    const models = media.filter((m) => m.mode === next);
    $("pgm-model").replaceChildren(...models.map((m) => option(m.id, m.name + (m.unavailable ? " — unavailable" : ""))));
    $("pgm-input-label").textContent = next === "image" ? "Prompt" : "Text to speak";
    $("pgm-go").textContent = next === "image" ? "Generate image" : "Speak";
    syncModel();
  }

  function syncModel() {
    const m = current();
    if (!m) return;
    $("pgm-image-opts").hidden = mode !== "image";
    $("pgm-speech-opts").hidden = mode !== "speech";
    if (mode === "image") {
      $("pgm-size").replaceChildren(...m.sizes.map((s) => option(s, s)));
      $("pgm-size").value = m.size;
    } else {
      $("pgm-voice").replaceChildren(...m.voices.map((v) => option(v, v)));
      $("pgm-format").replaceChildren(...m.formats.map((f) => option(f, f)));
    }
    $("pgm-error").hidden = !m.unavailable;
    $("pgm-error").textContent = m.unavailable ? m.name + " is unavailable: " + m.unavailable : "";
    $("pgm-go").disabled = Boolean(m.unavailable);
  }

  function fail(message) {
    $("pgm-error").hidden = false;
    $("pgm-error").textContent = message;
  }

  async function submit(event) {
    event.preventDefault();
    const m = current();
    const text = $("pgm-input").value.trim();
    if (!m || !text) return;
    const body = mode === "image"
      ? { model: m.id, prompt: text, size: $("pgm-size").value, response_format: "b64_json" }
      : { model: m.id, input: text, voice: $("pgm-voice").value, response_format: $("pgm-format").value };
    $("pgm-error").hidden = true;
    $("pgm-cost").hidden = true;
    $("pgm-go").disabled = true;
    $("pgm-result").replaceChildren(document.createTextNode(mode === "image" ? "Drawing…" : "Speaking…"));
    try {
      const resp = await fetch("/app/playground/" + (mode === "image" ? "images" : "speech"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      if (!resp.ok) {
        const err = await resp.json().catch(() => ({}));
        $("pgm-result").replaceChildren();
        fail((err.error && err.error.message) || err.message || "HTTP " + resp.status);
        return;
      }
      const credits = resp.headers.get("x-aimlapi-credits-used");
      const nodes = [];
      if (mode === "image") {
        const answer = await resp.json();
        const type = "image/" + (answer.output_format || "png");
        for (const item of answer.data || []) {
          const img = document.createElement("img");
          img.alt = "Generated image: " + text;
          if (item.b64_json) img.src = "data:" + type + ";base64," + item.b64_json;
          else if (item.url) { const a = document.createElement("a"); a.href = item.url; a.textContent = item.url; nodes.push(a); continue; }
          nodes.push(img);
        }
      } else {
        const blob = await resp.blob();
        if (audioUrl) URL.revokeObjectURL(audioUrl);
        audioUrl = URL.createObjectURL(blob);
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.src = audioUrl;
        audio.setAttribute("aria-label", "Generated speech");
        const link = document.createElement("a");
        link.href = audioUrl;
        link.download = "speech." + body.response_format;
        link.textContent = "Download " + link.download + " (" + blob.size.toLocaleString() + " bytes)";
        nodes.push(audio, link);
      }
      $("pgm-result").replaceChildren(...nodes);
      if (credits !== null) {
        $("pgm-cost").hidden = false;
        $("pgm-cost").textContent = Number(credits).toLocaleString() + " credits";
      }
    } catch (err) {
      $("pgm-result").replaceChildren();
      fail("Network error: " + err);
    } finally {
      $("pgm-go").disabled = Boolean((current() || {}).unavailable);
      if (window.mgRefreshBalance) window.mgRefreshBalance();
    }
  }

  for (const b of document.querySelectorAll("[data-mode]")) b.addEventListener("click", () => setMode(b.dataset.mode));
  $("pgm-model").addEventListener("change", syncModel);
  $("pgm-form").addEventListener("submit", submit);
})();
