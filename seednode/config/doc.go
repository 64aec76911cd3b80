// Package config is the seed node's configuration file: a YAML document whose
// keys are the json tags of Config (lowerCamelCase), the built-in defaults
// (Default), strict parsing (Load, Parse), validation that names every bad
// field (Validate) and command-line overrides (BindFlags, ApplyFlags).
// Example returns a complete, commented file with every default.
//
// # Precedence
//
// Lowest to highest:
//
//	built-in defaults  <  config file  <  flags set on the command line
//
// A key missing from the file keeps its default; a flag that is not given
// keeps the file's value (or the default). A given list flag replaces the
// list, except --host-vault, which adds to hostedVaults. The file is not
// validated on its own: the merged result is, so a flag can fix a bad value in
// the file.
//
// # Use
//
//	def := config.Default()
//	def.BindFlags(cmd.Flags())                  // defaults appear in --help
//	cmd.Flags().String("config", "", "YAML configuration file")
//	...
//	// after the flags are parsed:
//	cfg := config.Default()
//	if path != "" {
//		if cfg, err = config.Load(path); err != nil { return err }
//	}
//	if err := cfg.ApplyFlags(cmd.Flags()); err != nil { return err }
//	if err := cfg.Validate(); err != nil { return err }  // every problem, one per line
//
// # Errors
//
// Every error about the content of a configuration wraps ErrInvalid, and each
// problem is a *FieldError whose Field is the path as written in the file:
// "dataDir", "listen.quic[0]", "relay.limits.maxCircuits".
// Parse and Validate report all problems at once (errors.Join). Parse refuses
// unknown keys (a removed setting says so), keys in the wrong case, duplicate
// keys, values of the wrong type, a key with no value where a single value is
// expected, and files over 1 MiB.
//
// # Values
//
// dht.mode (Server, Client, Off), relay.mode (Agents, Public, Off) and
// logLevel (Debug, Info, Warn, Error) are CamelCase, as in the SeedNode API.
// The file and the flags accept them in any case and store the canonical
// spelling; Validate, which also checks a Config built in code, wants that
// spelling (use the constants).
//
// # Reading YAML
//
// The file is converted to JSON with sigs.k8s.io/yaml and decoded strictly
// with sigs.k8s.io/json (keys match case-sensitively; unknown and duplicate
// keys are reported with their paths), so YAML 1.1 rules apply: an unquoted
// yes, no, on or off is a boolean. The mode fields accept an unquoted off;
// other text fields want quotes around such words and around numbers
// ("dataDir: '2024'"). An empty list and a list key with no value are the
// same (nil); a section key with no value keeps the section's defaults.
package config
