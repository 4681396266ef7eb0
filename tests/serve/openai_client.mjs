// openai_client.mjs - tests/e2e_serve_openai.sh's client: the real `openai`
// npm package against fs serve. Usage: node openai_client.mjs BASE_URL KEY
// Prints "FAIL: ..." lines and exits 1 on any failure.
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0, timeout: 60000 });
let failed = 0;
const check = (ok, msg) => { if (!ok) { console.log("FAIL: " + msg); failed = 1; } };
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about the sea." }];

// models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === "tiny", "models.list: " + JSON.stringify(models.data));

// chat, not streamed
const chat = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0 });
check(chat.object === "chat.completion" && typeof chat.choices[0].message.content === "string", "chat: " + JSON.stringify(chat));
check(chat.usage.completion_tokens >= 1 && chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens,
      "chat usage: " + JSON.stringify(chat.usage));

// chat, streamed: the same text as not streamed (greedy), usage at the end
const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0,
  stream: true, stream_options: { include_usage: true }, logprobs: true, top_logprobs: 2 });
let text = "", usage = null, finish = null, n_lp = 0;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const ch = chunk.choices[0];
  if (!ch) continue;
  text += ch.delta.content || "";
  if (ch.finish_reason) finish = ch.finish_reason;
  n_lp += ch.logprobs ? ch.logprobs.content.length : 0;
}
check(text === chat.choices[0].message.content, `streamed ${JSON.stringify(text)} != ${JSON.stringify(chat.choices[0].message.content)}`);
check(usage && usage.completion_tokens === chat.usage.completion_tokens, "stream usage: " + JSON.stringify(usage));
check(finish === chat.choices[0].finish_reason, "stream finish_reason " + finish);
check(n_lp === chat.usage.completion_tokens, `stream logprobs: ${n_lp} entries for ${chat.usage.completion_tokens} tokens`);

// completions, streamed and not
const comp = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 10, temperature: 0 });
check(comp.object === "text_completion" && comp.choices[0].text.length > 0, "completion: " + JSON.stringify(comp));
const cs = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 10, temperature: 0, stream: true });
let ctext = "";
for await (const chunk of cs) ctext += chunk.choices[0] ? chunk.choices[0].text : "";
check(ctext === comp.choices[0].text, `streamed completion ${JSON.stringify(ctext)} != ${JSON.stringify(comp.choices[0].text)}`);

// errors surface as the client's typed errors
try {
  await client.chat.completions.create({ model: "tiny", messages, n: 2 });
  check(false, "n: 2 was accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "n", "n: 2 gave " + e);
}
try {
  await client.chat.completions.create({ model: "tiny", messages, temperature: 9 });
  check(false, "temperature 9 was accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && /temperature/.test(e.message), "temperature 9 gave " + e);
}
try {
  await new OpenAI({ baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0 }).models.list();
  check(false, "a wrong key was accepted");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, "a wrong key gave " + e);
}
try {
  await client.completions.create({ model: "tiny", prompt: "word ".repeat(600), max_tokens: 1 });
  check(false, "an over-long prompt was accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded", "an over-long prompt gave " + e);
}
if (!failed) console.log("openai client: ok");
process.exit(failed);
