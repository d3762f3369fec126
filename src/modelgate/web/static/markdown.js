// Safe Markdown for model output: the text is parsed into DOM nodes built with createElement and
// textContent only (no HTML string ever reaches the page, so nothing in a reply can run or inject
// markup). Supported: paragraphs, headings, lists, block quotes, rules, tables, fenced code blocks
// (with a small syntax highlighter and a Copy button), inline code, bold, italic, strike-through and
// http(s)/mailto links. An unterminated code fence (mid-stream) is shown as code so far.
"use strict";

(() => {
  const KEYWORDS = new Set((
    "and as assert async await break case catch class const continue def default del do elif else " +
    "enum except export extends false finally fn for from func function go if impl import in " +
    "interface is lambda let loop match mod mut new nil none not null or package pass pub raise " +
    "return self static struct super switch this throw true try type typeof use var void while " +
    "with yield True False None select insert update delete where join on group by order limit " +
    "create table values into echo then fi done esac local"
  ).split(" "));

  // One regex pass: comments, strings, numbers, words. Anything else is plain text.
  const TOKEN = /(\/\/[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*|--[^\n]*)|("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|(\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;
  const HASH_COMMENTS = new Set(["python", "py", "bash", "sh", "shell", "zsh", "yaml", "yml", "ruby", "rb", "toml", "r", "perl"]);
  const DASH_COMMENTS = new Set(["sql", "lua", "haskell", "hs"]);

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function highlight(code, lang) {
    const frag = document.createDocumentFragment();
    const hash = HASH_COMMENTS.has(lang);
    const dash = DASH_COMMENTS.has(lang);
    let last = 0;
    TOKEN.lastIndex = 0;
    let m;
    while ((m = TOKEN.exec(code)) !== null) {
      let cls = null;
      if (m[1] !== undefined) {
        const c = m[1];
        if ((c[0] === "#" && !hash) || (c.startsWith("--") && !dash)) {
          TOKEN.lastIndex = m.index + 1; // not a comment in this language: rescan after its first char
          continue;
        }
        cls = "tok-com";
      } else if (m[2] !== undefined) cls = "tok-str";
      else if (m[3] !== undefined) cls = "tok-num";
      else if (m[4] !== undefined && KEYWORDS.has(m[4])) cls = "tok-kw";
      if (!cls) continue;
      if (m.index > last) frag.appendChild(document.createTextNode(code.slice(last, m.index)));
      frag.appendChild(el("span", cls, m[0]));
      last = m.index + m[0].length;
    }
    if (last < code.length) frag.appendChild(document.createTextNode(code.slice(last)));
    return frag;
  }

  function safeHref(url) {
    const trimmed = url.trim();
    return /^(https?:\/\/|mailto:)/i.test(trimmed) ? trimmed : null;
  }

  // Inline: `code`, **bold**, __bold__, *em*, _em_, ~~del~~, [text](url).
  const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|~~([\s\S]+?)~~|\*([^*\s][^*]*?)\*|(?<![A-Za-z0-9])_([^_\s][^_]*?)_(?![A-Za-z0-9])|\[([^\]]+)\]\(([^)\s]+)\)/g;

  function inline(text, parent) {
    let last = 0;
    let m;
    const re = new RegExp(INLINE.source, "g");
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[2] !== undefined) parent.appendChild(el("code", null, m[2]));
      else if (m[3] !== undefined || m[4] !== undefined) inline(m[3] ?? m[4], parent.appendChild(el("strong")));
      else if (m[5] !== undefined) inline(m[5], parent.appendChild(el("del")));
      else if (m[6] !== undefined || m[7] !== undefined) inline(m[6] ?? m[7], parent.appendChild(el("em")));
      else if (m[8] !== undefined) {
        const href = safeHref(m[9]);
        if (href) {
          const a = el("a");
          a.href = href;
          a.rel = "noopener noreferrer nofollow";
          a.target = "_blank";
          inline(m[8], a);
          parent.appendChild(a);
        } else parent.appendChild(document.createTextNode(m[0]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  function codeBlock(code, lang) {
    const box = el("div", "codeblock");
    const head = el("div", "code-head");
    head.appendChild(el("span", "code-lang", lang || "text"));
    const copy = el("button", "copy-code", "Copy");
    copy.type = "button";
    copy.setAttribute("aria-label", "Copy code");
    head.appendChild(copy);
    const pre = el("pre");
    pre.tabIndex = 0; // it may scroll sideways: keyboard users can reach it
    const codeEl = el("code", lang ? "lang-" + lang.replace(/[^a-z0-9+-]/gi, "") : null);
    codeEl.appendChild(highlight(code, (lang || "").toLowerCase()));
    pre.appendChild(codeEl);
    box.append(head, pre);
    return box;
  }

  function splitRow(line) {
    let s = line.trim();
    if (s.startsWith("|")) s = s.slice(1);
    if (s.endsWith("|")) s = s.slice(0, -1);
    return s.split("|").map((c) => c.trim());
  }

  const RULE = /^ {0,3}([-*_])( *\1){2,} *$/;
  const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const FENCE = /^ {0,3}(```+|~~~+)\s*([\w+#.-]*)/;
  const BULLET = /^(\s*)([-*+])\s+(.*)$/;
  const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
  const TABLE_SEP = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

  function render(source) {
    const root = document.createDocumentFragment();
    const lines = source.replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    let para = [];
    const flush = () => {
      if (!para.length) return;
      const p = el("p");
      para.forEach((line, n) => {
        if (n) p.appendChild(el("br"));
        inline(line, p);
      });
      root.appendChild(p);
      para = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if ((m = FENCE.exec(line))) {
        flush();
        const fence = m[1];
        const body = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
        i++; // the closing fence (or past the end while streaming)
        root.appendChild(codeBlock(body.join("\n"), m[2]));
        continue;
      }
      if (!line.trim()) { flush(); i++; continue; }
      if ((m = HEADING.exec(line))) {
        flush();
        root.appendChild(inline(m[2], el("h" + Math.min(6, m[1].length + 2))));
        i++;
        continue;
      }
      if (RULE.test(line)) { flush(); root.appendChild(el("hr")); i++; continue; }
      if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
        flush();
        const wrap = el("div", "table-wrap");
        const table = el("table", "table md-table");
        const headRow = el("tr");
        splitRow(line).forEach((c) => headRow.appendChild(inline(c, el("th"))));
        table.appendChild(el("thead")).appendChild(headRow);
        const tbody = table.appendChild(el("tbody"));
        i += 2;
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
          const tr = el("tr");
          splitRow(lines[i]).forEach((c) => tr.appendChild(inline(c, el("td"))));
          tbody.appendChild(tr);
          i++;
        }
        wrap.appendChild(table);
        root.appendChild(wrap);
        continue;
      }
      if (/^\s*>/.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*> ?/, ""));
        const bq = el("blockquote");
        bq.appendChild(render(quoted.join("\n")));
        root.appendChild(bq);
        continue;
      }
      if (BULLET.test(line) || ORDERED.test(line)) {
        flush();
        const ordered = !BULLET.test(line);
        const list = el(ordered ? "ol" : "ul");
        if (ordered) {
          const start = Number(ORDERED.exec(line)[2]);
          if (start !== 1) list.start = start;
        }
        const pattern = ordered ? ORDERED : BULLET;
        let item = null;
        let itemLines = [];
        const endItem = () => {
          if (item) { item.appendChild(render(itemLines.join("\n"))); list.appendChild(item); }
        };
        while (i < lines.length) {
          const l = lines[i];
          const im = pattern.exec(l);
          if (im && im[1].length < 2) {
            endItem();
            item = el("li");
            itemLines = [im[3]];
          } else if (!l.trim()) {
            const next = lines[i + 1];
            if (next === undefined || !(pattern.test(next) || /^\s{2,}\S/.test(next))) break;
            itemLines.push("");
          } else if (/^\s{2,}/.test(l)) {
            itemLines.push(l.replace(/^\s{2,4}/, "")); // indented: a continuation or a nested list
          } else if (itemLines.length && itemLines[itemLines.length - 1].trim() &&
                     !(BULLET.test(l) || ORDERED.test(l) || HEADING.test(l) || FENCE.test(l) || /^\s*>/.test(l))) {
            itemLines.push(l); // a lazy continuation line
          } else break;
          i++;
        }
        endItem();
        // Single-paragraph items read better without the paragraph margin.
        list.querySelectorAll(":scope > li > p:only-child").forEach((p) => p.replaceWith(...p.childNodes));
        root.appendChild(list);
        continue;
      }
      para.push(line);
      i++;
    }
    flush();
    return root;
  }

  window.mgMarkdown = { render, highlight };
})();
