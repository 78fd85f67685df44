{
  "targets": [
    {
      "target_name": "qks_native",
      "sources": ["src/qkd/native/addon.c", "src/qkd/native/amplify.c", "src/qkd/native/cascade.c", "src/qkd/native/clicks.c", "src/qkd/native/shuffle.c", "src/qkd/native/wipe.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra"],
      "libraries": ["-l:libgmp.so.10"]
    }
  ]
}
