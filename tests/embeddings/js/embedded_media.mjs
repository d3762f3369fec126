// The official openai JS SDK against the embedded media models (tests/media/test_sdk_js.py):
// audio.speech.create on local/espeak-ng (eSpeak NG), then audio.transcriptions.create on
// local/pocketsphinx-en-us (PocketSphinx) of that speech and of a recorded sample. One JSON line out.
import { readFile } from "node:fs/promises";
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.MG_BASE_URL, apiKey: process.env.MG_KEY, maxRetries: 0 });
const out = {};

const speech = await client.audio.speech.create({
  model: "local/espeak-ng",
  input: process.env.MG_SAY,
  voice: "nova",
  response_format: "wav",
});
out.speechType = speech.headers.get("content-type");
out.credits = speech.headers.get("x-aimlapi-credits-used");
const wav = Buffer.from(await speech.arrayBuffer());
out.speechBytes = wav.length;

const heard = await client.audio.transcriptions.create({
  model: "local/pocketsphinx-en-us",
  file: await toFile(wav, "said.wav"),
});
out.heard = heard.text;

const recorded = await readFile(process.env.MG_RECORDED);
const verbose = await client.audio.transcriptions.create({
  model: "local/pocketsphinx-en-us",
  file: await toFile(recorded, "recorded.wav"),
  response_format: "verbose_json",
  timestamp_granularities: ["word"],
});
out.recorded = verbose.text;
out.duration = verbose.duration;
out.words = verbose.words.length;
console.log(JSON.stringify(out));
