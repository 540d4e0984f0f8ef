"""The official `openai` Python client as an agent calling an AI API
through a Laissez gate.

Usage: openai_client.py BASE_URL ACCESS_TOKEN PROMPT

Asks four ways (chat completions and the Responses API, each plain and
streamed) and prints one JSON object with the text each produced.
"""

import json
import sys

import openai


def main():
    base_url, token, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
    client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)
    results = {}

    chat = client.chat.completions.create(
        model="stand-in", messages=[{"role": "user", "content": prompt}]
    )
    results["chat"] = chat.choices[0].message.content

    stream = client.chat.completions.create(
        model="stand-in", messages=[{"role": "user", "content": prompt}], stream=True
    )
    results["chat_stream"] = "".join(
        chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
    )

    response = client.responses.create(model="stand-in", input=prompt)
    results["responses"] = response.output_text

    text = []
    for event in client.responses.create(model="stand-in", input=prompt, stream=True):
        if event.type == "response.output_text.delta":
            text.append(event.delta)
    results["responses_stream"] = "".join(text)

    print(json.dumps(results))


if __name__ == "__main__":
    main()
