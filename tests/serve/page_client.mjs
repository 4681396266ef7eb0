// page_client.mjs - tests/e2e_serve_page.sh's browser: headless Chromium
// through puppeteer-core opens fs serve's chat page, sends a message,
// waits for the streamed reply, hovers a generated token and checks that
// its probability and alternatives show. Usage:
//   node page_client.mjs BASE_URL CHROMIUM [SCREENSHOT.png]
import puppeteer from "puppeteer-core";

const [base, chromium, shot] = process.argv.slice(2);
let failed = 0;
const check = (ok, msg) => { if (!ok) { console.log("FAIL: " + msg); failed = 1; } };
const browser = await puppeteer.launch({ executablePath: chromium, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 640 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/", { waitUntil: "networkidle0" });
  check((await page.title()) === "fs serve", "title: " + (await page.title()));
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("tiny"), { timeout: 10000 });
  await page.$eval("#maxtok", (e) => { e.value = "40"; });
  await page.type("#input", "Tell me a story about the sea.");
  await page.keyboard.press("Enter");
  await page.waitForSelector('.assistant[data-done="1"]', { timeout: 60000 });
  const reply = await page.$eval(".assistant", (e) => e.textContent);
  const n = await page.$$eval(".assistant .tok", (s) => s.length);
  check(reply.trim().length > 0 && n > 1, `the reply: ${n} tokens, ${JSON.stringify(reply)}`);
  check(!(await page.$(".assistant .error")), "the reply is an error: " + reply);
  const stats = await page.$eval(".stats", (e) => e.textContent);
  check(/tok\/s/.test(stats) && /prompt \d+ tokens/.test(stats), "stats: " + stats);
  const toks = await page.$$(".assistant .tok");
  await toks[Math.min(2, toks.length - 1)].hover();
  await page.waitForSelector("#tip table tr", { visible: true, timeout: 5000 });
  const tip = await page.$eval("#tip", (e) => e.textContent);
  const rows = await page.$$eval("#tip table tr", (r) => r.length);
  check(/p = \d/.test(tip) && rows === 5, `the token's tooltip (${rows} rows): ${tip}`);
  check(errors.length === 0, "page errors: " + errors.join("; "));
  if (shot) await page.screenshot({ path: shot });
} finally {
  await browser.close();
}
if (!failed) console.log("chat page: ok");
process.exit(failed);
