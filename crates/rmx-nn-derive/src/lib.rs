//! `#[derive(Module)]` for rmx-nn: implements `rmx_nn::Module` for a struct by visiting
//! each field under its name (tuple fields under their index), so a struct of layers
//! gets MLX's dotted parameter names (`encoder.layers.0.weight`) with no hand-written
//! plumbing. `#[module(skip)]` leaves a field out (plain settings such as `eps`).

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{parse_macro_input, parse_quote, Data, DeriveInput, Fields, Index};

#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Whether the field carries `#[module(skip)]`; any other `module(...)` argument is an error.
fn is_skipped(field: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for attr in &field.attrs {
        if !attr.path().is_ident("module") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown module attribute; the only one is #[module(skip)]"))
            }
        })?;
    }
    Ok(skip)
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        _ => return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Module)] supports structs only; implement rmx_nn::Module by hand for enums",
        )),
    };
    // (accessor, name under which the field's parameters appear)
    let mut visited: Vec<(TokenStream2, String)> = Vec::new();
    match fields {
        Fields::Named(named) => {
            for f in &named.named {
                if is_skipped(f)? {
                    continue;
                }
                let ident = f.ident.as_ref().expect("named field");
                let key = ident.to_string();
                let key = key.strip_prefix("r#").unwrap_or(&key).to_string();
                visited.push((quote!(#ident), key));
            }
        }
        Fields::Unnamed(unnamed) => {
            for (i, f) in unnamed.unnamed.iter().enumerate() {
                if is_skipped(f)? {
                    continue;
                }
                let idx = Index::from(i);
                visited.push((quote!(#idx), i.to_string()));
            }
        }
        Fields::Unit => {}
    }

    let mut generics = input.generics.clone();
    for tp in generics.type_params_mut() {
        tp.bounds.push(parse_quote!(::rmx_nn::Module));
    }
    let (impl_g, ty_g, where_g) = generics.split_for_impl();

    let f = format_ident!("__f");
    let prefix = format_ident!("__prefix");
    let visit = visited.iter().map(|(acc, key)| {
        quote! {
            ::rmx_nn::Module::visit_params(&self.#acc, &::rmx_nn::join_key(#prefix, #key), #f);
        }
    });
    let visit_mut = visited.iter().map(|(acc, key)| {
        quote! {
            ::rmx_nn::Module::visit_params_mut(&mut self.#acc, &::rmx_nn::join_key(#prefix, #key), #f)?;
        }
    });
    let training = visited.iter().map(|(acc, _)| {
        quote! { ::rmx_nn::Module::set_training(&mut self.#acc, __training); }
    });

    Ok(quote! {
        impl #impl_g ::rmx_nn::Module for #name #ty_g #where_g {
            fn visit_params(
                &self,
                #prefix: &str,
                #f: &mut dyn FnMut(&str, &::rmx_nn::Param),
            ) {
                let _ = (&#prefix, &#f);
                #(#visit)*
            }

            fn visit_params_mut(
                &mut self,
                #prefix: &str,
                #f: &mut dyn FnMut(&str, &mut ::rmx_nn::Param) -> ::rmx_nn::Result<()>,
            ) -> ::rmx_nn::Result<()> {
                let _ = (&#prefix, &#f);
                #(#visit_mut)*
                Ok(())
            }

            fn set_training(&mut self, __training: bool) {
                let _ = __training;
                #(#training)*
            }
        }
    })
}
