// The Vercel AI SDK's default OpenAI provider (which speaks the Responses API) against modelgate:
// generateText, streamText, tool calls over several steps, generateObject. Prints one JSON object of
// what the SDK returned (or the error of each part); tests/doors/responses/test_ai_sdk.py asserts on it.
//   MG_BASE_URL=http://127.0.0.1:8000/v1 MG_KEY=... MG_MODEL=gpt-fake MG_PARTS=text,stream,tools,object node aisdk.mjs
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: process.env.MG_BASE_URL, apiKey: process.env.MG_KEY });
const model = openai(process.env.MG_MODEL);
const parts = new Set((process.env.MG_PARTS || "text,stream,tools,object").split(","));
const cap = process.env.MG_MAX_TOKENS ? Number(process.env.MG_MAX_TOKENS) : undefined;
const out = {};

async function part(name, fn) {
  if (!parts.has(name)) return;
  const t0 = Date.now();
  try {
    out[name] = await fn();
    console.error(`${name}: ${Date.now() - t0} ms`);
  } catch (err) {
    out[name] = { error: err.constructor.name, message: String(err.message), status: err.statusCode ?? null };
  }
}

await part("text", async () => {
  const r = await generateText({ model, prompt: "hello there", maxOutputTokens: 64, maxRetries: 0 });
  return {
    text: r.text,
    finishReason: r.finishReason,
    usage: r.usage,
    responseId: r.response.id,
    modelId: r.response.modelId,
    warnings: r.warnings,
  };
});

await part("stream", async () => {
  const errors = [];
  const s = streamText({ model, prompt: "one two three", maxOutputTokens: cap, maxRetries: 0, onError: ({ error }) => errors.push(String(error)) });
  const chunks = [];
  for await (const t of s.textStream) chunks.push(t);
  return { text: chunks.join(""), chunks: chunks.length, finishReason: await s.finishReason, usage: await s.usage, errors };
});

await part("tools", async () => {
  const r = await generateText({
    model,
    prompt: "What is the weather in Paris?",
    maxRetries: 0,
    tools: {
      get_weather: tool({
        description: "The weather in a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => `sunny in ${city}`,
      }),
    },
    stopWhen: stepCountIs(3),
  });
  return {
    steps: r.steps.length,
    calls: r.steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    results: r.steps.flatMap((s) => s.toolResults.map((t) => t.output)),
    text: r.text,
    finishReason: r.finishReason,
  };
});

await part("object", async () => {
  const r = await generateObject({
    model,
    maxRetries: 0,
    maxOutputTokens: cap,
    // MG_SMALL_OBJECT: a bounded schema, for a small local model under a low output cap
    schema: process.env.MG_SMALL_OBJECT
      ? z.object({ city: z.string().max(24) })
      : z.object({ city: z.string(), population: z.number() }),
    prompt: "The largest city of France and its population.",
  });
  return { object: r.object, finishReason: r.finishReason, usage: r.usage };
});

console.log(JSON.stringify(out));
