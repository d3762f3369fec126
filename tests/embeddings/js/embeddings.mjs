// The official openai JS SDK against modelgate: embeddings.create in every input form and both
// encodings, models.retrieve (incl. NotFoundError) and models.list. Prints one JSON object of what
// the SDK returned; tests/embeddings/test_sdk_js.py asserts on it.
//   MG_BASE_URL=http://127.0.0.1:8000/v1 MG_KEY=... MG_MODELS='["m1","m2"]' node embeddings.mjs
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.MG_BASE_URL, apiKey: process.env.MG_KEY, maxRetries: 0 });
const models = JSON.parse(process.env.MG_MODELS);

// The SDK decodes base64 itself when it chose it (no encoding_format given); asked for explicitly,
// the string is handed over as is: decoded here (little-endian float32).
function vector(embedding) {
  if (typeof embedding !== "string") return embedding;
  const bytes = Buffer.from(embedding, "base64");
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
}

function summary(res) {
  return {
    object: res.object,
    model: res.model,
    usage: res.usage,
    data: res.data.map((d) => ({
      object: d.object,
      index: d.index,
      isString: typeof d.embedding === "string",
      length: vector(d.embedding).length,
      head: vector(d.embedding).slice(0, 4),
    })),
  };
}

const out = { embeddings: {}, retrieve: {}, list: [] };
for (const model of models) {
  const forms = {
    string: "The quick brown fox",
    strings: ["The quick brown fox", "jumps over the lazy dog"],
    tokens: [791, 406, 141, 399], // small ids: valid in any tokenizer's vocabulary
    token_arrays: [[791, 406], [141, 399, 353]],
  };
  out.embeddings[model] = {};
  for (const [name, input] of Object.entries(forms)) {
    for (const encoding of ["float", "base64", null]) {
      const params = { model, input };
      if (encoding) params.encoding_format = encoding;
      const key = `${name}/${encoding ?? "default"}`;
      try {
        out.embeddings[model][key] = summary(await client.embeddings.create(params));
      } catch (err) {
        out.embeddings[model][key] = { error: err.constructor.name, status: err.status ?? null, message: String(err.message) };
      }
    }
  }
  const m = await client.models.retrieve(model);
  out.retrieve[model] = { id: m.id, object: m.object, created: m.created, owned_by: m.owned_by };
}
try {
  await client.models.retrieve("nope/nothing");
  out.notFound = "no error";
} catch (err) {
  out.notFound = err instanceof OpenAI.NotFoundError ? "NotFoundError" : err.constructor.name;
}
for await (const m of client.models.list()) out.list.push({ id: m.id, object: m.object, owned_by: m.owned_by });
console.log(JSON.stringify(out));
