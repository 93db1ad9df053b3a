// Render chat-template cases with @huggingface/jinja, the engine the Hugging Face Hub and
// transformers.js use. Reads {"template": str, "cases": [{messages, tools,
// add_generation_prompt, enable_thinking}]} on stdin and writes one result per case,
// {"prompt": str} or {"error": str}, as a JSON array on stdout.
// The module path comes from SMOL_TOOLS_HF_JINJA (the pinned install in the cache).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const modulePath = process.env.SMOL_TOOLS_HF_JINJA;
if (!modulePath) {
  process.stderr.write("SMOL_TOOLS_HF_JINJA is not set\n");
  process.exit(2);
}
const { Template } = await import(pathToFileURL(modulePath).href);
const request = JSON.parse(readFileSync(0, "utf8"));
const template = new Template(request.template);  // parsed once for all cases
const results = request.cases.map((c) => {
  try {
    // The variables transformers.js's apply_chat_template passes (no bos/eos: our template uses none).
    const prompt = template.render({
      messages: c.messages,
      tools: c.tools ?? null,
      documents: null,
      add_generation_prompt: c.add_generation_prompt,
      enable_thinking: c.enable_thinking,
    });
    return { prompt };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
});
process.stdout.write(JSON.stringify(results));
