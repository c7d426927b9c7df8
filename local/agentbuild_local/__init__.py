"""agentbuild's local stack (run it with local/stack.py; local/README.md describes it).

Modules, by concern; each imports only those listed before it (no cycles):
  config         names, folders, StackError, log, env files
  workspace      the Lambda crates under functions/, cargo metadata
  process        pid files, process groups, ports
  engine         moto: version check, server, clients; ASL placeholder substitution
  s3fixes        moto S3 fixes: atomic conditional PutObject, PutObjectLegalHold 404s
  lambda_bridge  the engine's Lambda invokes -> injection queue or the runtime emulator
  codebuild      CodeBuild scripts and the moto CodeBuild patches
  inject_server  the injection HTTP endpoint
  resources      bucket, ECR repository, CodeBuild project, state machine; bucket save/restore
  events         the EventBridge stand-in: ended executions -> record-result
  handlers       cargo lambda watch and the handler processes
  cli            the commands up, down, status, env, serve
"""
