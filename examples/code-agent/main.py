"""A Strands agent served by Bedrock AgentCore Runtime from a code artifact (no container).

agentbuild packages it as `artifact: "code"` with `entryPoint: "main.py"`: the dependency layer
comes from requirements.txt (binary wheels for arm64 Linux), this file is copied beside it.
"""
from bedrock_agentcore import BedrockAgentCoreApp
from strands import Agent

app = BedrockAgentCoreApp()
_agent = None


def agent() -> Agent:
    # Built on the first call: importing the module (AgentCore's /ping) needs no model access.
    global _agent
    if _agent is None:
        _agent = Agent(system_prompt="You are a concise assistant.")
    return _agent


@app.entrypoint
def invoke(payload: dict) -> dict:
    prompt = payload.get("prompt", "Hello")
    result = agent()(prompt)
    return {"result": str(result)}


if __name__ == "__main__":
    app.run()
