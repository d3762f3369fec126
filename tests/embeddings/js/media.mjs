// The official openai JS SDK against the media doors (tests/media/test_sdk_js.py): images.generate,
// images.edit, audio.speech.create and audio.transcriptions.create. Prints one JSON line of results.
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.MG_BASE_URL, apiKey: process.env.MG_KEY, maxRetries: 0 });
const png = Buffer.from(process.env.MG_PNG, "base64");
const wav = Buffer.from(process.env.MG_WAV, "base64");
const b64 = (s) => Buffer.from(s, "base64").toString("base64");
const out = {};

const gen = await client.images.generate({ model: "fake/image", prompt: "a red fox", n: 2, response_format: "b64_json" });
out.images = gen.data.map((d) => b64(d.b64_json));
out.size = gen.size;

const edit = await client.images.edit({
  model: "fake/image",
  image: await toFile(png, "in.png", { type: "image/png" }),
  prompt: "add a moon",
  response_format: "b64_json",
});
out.edit = edit.data.map((d) => b64(d.b64_json));

const speech = await client.audio.speech.create({ model: "fake/tts", input: "Good morning", voice: "alloy" });
out.speechType = speech.headers.get("content-type");
out.speech = Buffer.from(await speech.arrayBuffer()).toString("base64");

const tr = await client.audio.transcriptions.create({ model: "fake/whisper", file: await toFile(wav, "a.wav") });
out.transcript = tr.text;
const srt = await client.audio.transcriptions.create({
  model: "fake/whisper",
  file: await toFile(wav, "a.wav"),
  response_format: "srt",
});
out.srt = srt;

try {
  await client.images.generate({ model: "fake/image", prompt: "x", size: "512x512" });
} catch (err) {
  out.badSize = [err.constructor.name, err.status];
}
console.log(JSON.stringify(out));
